import { EventEmitter } from 'node:events';
import { appendFileSync } from 'node:fs';
import type { Accel } from './accel.js';

/** Counts of cells by status. */
export interface CellCounts {
  ok: number;
  failed: number;
  skipped: number;
}

/** Everything the stages, the testbed and the experiments tell whoever displays or records progress. */
export type LabEvent =
  | { type: 'stage-start'; stage: string; fingerprint: string; logPath: string }
  | { type: 'stage-cached'; stage: string; fingerprint: string; dir: string }
  | { type: 'stage-done'; stage: string; seconds: number; dir: string }
  | { type: 'stage-failed'; stage: string; seconds: number; error: string; logPath: string; tail: string[] }
  | { type: 'line'; stage: string; line: string }
  | { type: 'step'; scope: string; message: string }
  | { type: 'warn'; scope: string; message: string }
  | {
      type: 'run-start';
      runDir: string;
      profile: string;
      cells: number;
      experiments: string[];
      quick: boolean;
      resume: boolean;
      estimate: { stagesMin: number; experimentsMin: number; diskGb: number; cpus: number };
    }
  | { type: 'accel'; accel: Accel; why: string }
  | { type: 'testbed-up'; kind: string; accel: Accel; link: string; nativeXdp: boolean; seconds: number }
  | {
      type: 'capabilities';
      kernelRelease: string;
      /** The declared BTF names found in the server kernel (undefined: no BTF). */
      btf?: Record<string, boolean>;
      /** The declared guest programs found, keyed role:path. */
      programs: Record<string, boolean>;
      la57?: boolean;
    }
  | { type: 'cell-start'; index: number; total: number; experiment: string; variant: string; params: string; rep: number }
  | {
      type: 'cell';
      index: number;
      total: number;
      experiment: string;
      variant: string;
      params: string;
      rep: number;
      status: 'ok' | 'failed' | 'skipped' | 'kept';
      headline?: { metric: string; value: number };
      reason?: string;
      seconds: number;
    }
  | { type: 'testbed-lost'; why: string }
  | { type: 'testbed-down'; kind: string }
  | {
      type: 'run-done';
      runDir: string;
      counts: CellCounts;
      exitCode: number;
      seconds: number;
      report?: string;
      bundle?: string;
      nothingToRun?: boolean;
      verdicts?: Array<{ claim: string; verdict: string; reason?: string }>;
    };

/** The single stream of typed events; one bus per lab process. */
export class EventBus {
  private readonly emitter = new EventEmitter();
  emit(event: LabEvent): void {
    this.emitter.emit('event', event);
  }
  on(listener: (event: LabEvent) => void): () => void {
    this.emitter.on('event', listener);
    return () => this.emitter.off('event', listener);
  }
}

/**
 * Record every event but build output lines as JSON lines (with a timestamp), for tests and tools that want
 * the run's facts rather than its prose (`--events FILE`).
 */
export function recordEvents(bus: EventBus, file: string): () => void {
  return bus.on((e) => {
    if (e.type === 'line') return;
    appendFileSync(file, `${JSON.stringify({ t: new Date().toISOString(), ...e })}\n`);
  });
}
