// Watches one lab process and tears its VM set down when it is gone (started by vm/testbed.ts, detached).
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { pidAlive } from '../core/host-probe.js';
import { readState, teardownDir } from './state.js';
import { clearReaperRecord, setReaperPhase } from '../core/reaping.js';

const [labPidArg, dir] = process.argv.slice(2);
const labPid = Number(labPidArg);
const note = (m: string) => appendFileSync(join(dir!, 'reaper.log'), `${new Date().toISOString()} ${m}\n`);

async function main(): Promise<void> {
  if (!dir || !labPid) process.exit(2);
  note(`watching lab pid ${labPid}`);
  for (;;) {
    await new Promise((r) => setTimeout(r, 250));
    const s = readState(dir);
    // The state file appears shortly after the reaper starts; once it is gone again the lab tore the set down.
    if (s && s.labPid !== labPid) return note(`state now belongs to pid ${s.labPid}: leaving`);
    if (!pidAlive(labPid)) {
      if (!readState(dir)) return note('lab gone, nothing to tear down');
      note('lab gone: tearing the VM set down');
      setReaperPhase(dir, 'tearing-down');
      await teardownDir(dir);
      return note('torn down');
    }
    if (!s && seenState) return note('state removed by the lab: leaving');
    if (s) seenState = true;
  }
}
let seenState = false;
main()
  .catch((e) => note(`error: ${(e as Error).message}`))
  // Gone from the VM directory: a resume waiting for this reaper may go on (core/reaping.ts).
  .finally(() => dir && clearReaperRecord(dir));
