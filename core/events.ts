import { EventEmitter } from 'node:events';

/** Everything the runner, the VMs and the experiments tell whoever displays progress. */
export type LabEvent =
  | { type: 'stage-start'; stage: string; fingerprint: string; logPath: string }
  | { type: 'stage-cached'; stage: string; fingerprint: string; dir: string }
  | { type: 'stage-done'; stage: string; seconds: number; dir: string }
  | { type: 'stage-failed'; stage: string; seconds: number; error: string; logPath: string; tail: string[] }
  | { type: 'line'; stage: string; line: string }
  | { type: 'step'; scope: string; message: string }
  | { type: 'warn'; scope: string; message: string };

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
