export const EXPERIMENTS: Array<{ id: string; title: string; variants: Array<{ id: string }> }> = [];
