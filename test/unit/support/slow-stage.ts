// A child process that builds a stage which writes part of its output and then waits forever:
// the test kills it with SIGKILL mid-write and checks that the entry is never reused.
import { buildEntry, type Stage } from '../../../core/stage.js';
import { EventBus } from '../../../core/events.js';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';

const [cacheRoot, fp] = process.argv.slice(2) as [string, string];
const stage: Stage = {
  id: 'slow',
  version: '1',
  deps: [],
  description: 'writes half its output, then hangs',
  inputs: async () => ({}),
  build: async (ctx) => {
    await writeFile(join(ctx.outDir, 'half.bin'), 'partial');
    ctx.log('half written');
    console.log('READY');
    // Stay alive (an unsettled promise alone lets Node exit) until the test kills us.
    setInterval(() => {}, 1000);
    await new Promise(() => {});
    return {};
  },
};
await buildEntry(stage, fp, { config: {} as never, deps: {}, cacheRoot, bus: new EventBus() });
