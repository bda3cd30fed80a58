export declare const SOURCE_ROOTS: string[];
export declare const STAMP: string;
export declare function newestSource(root: string, roots?: string[]): { mtimeMs: number; file: string; count: number };
export declare function staleness(root: string, roots?: string[]): string | undefined;
