// Watches one lab process running cells on the hosts testbed (started by hosts/testbed.ts, detached). When
// the lab is gone before its own teardown (kill -9), it stops what the cells started on both hosts (their
// ledger: by PID and start time, never by name) and detaches XDP from the server's link NIC.
import { appendFileSync, existsSync, readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { pidAlive } from '../core/host-probe.js';
import { guardArgv, parseGuard } from '../core/processes.js';
import { clearReaperRecord, setReaperPhase } from '../core/reaping.js';
import { HostPair, ROLES } from './check.js';
import { loadHostsConfig } from './config.js';
import type { HostsReaperMarker } from './testbed.js';

const [labPidArg, marker] = process.argv.slice(2);
const labPid = Number(labPidArg);
const note = (m: string) => appendFileSync(join(dirname(marker!), 'hosts-reaper.log'), `${new Date().toISOString()} ${m}\n`);

async function reap(m: HostsReaperMarker): Promise<void> {
  const pair = HostPair.open(loadHostsConfig(m.hostsFile));
  try {
    for (const role of ROLES) {
      const h = pair.host(role);
      const r = await h.exec(guardArgv([m.ledger], 10), { allowFailure: true, timeoutMs: 120_000 });
      const g = parseGuard(r.stdout);
      note(`${role}: stopped ${g.stopped.map((p) => `${p.tag} ${p.pid}`).join(', ') || 'nothing'}; survived ${g.survived.length}; exit ${r.code}`);
      if (!g.survived.length) await h.exec(['rm', '-f', m.ledger], { allowFailure: true, timeoutMs: 30_000 });
    }
    // Any XDP program on the link NIC is the lab's: up refused to start with a foreign one attached.
    const x = await pair.server.exec(['ip', 'link', 'set', 'dev', m.serverIf, 'xdp', 'off'], { allowFailure: true, timeoutMs: 30_000 });
    note(`server: XDP off on ${m.serverIf}: exit ${x.code}`);
  } finally {
    await pair.close();
  }
}

async function main(): Promise<void> {
  if (!marker || !labPid) process.exit(2);
  note(`watching lab pid ${labPid}`);
  for (;;) {
    await new Promise((r) => setTimeout(r, 250));
    if (!existsSync(marker)) return note('the lab tore the hosts testbed down itself: leaving');
    if (pidAlive(labPid)) continue;
    note('lab gone before its teardown: stopping what its cells started');
    setReaperPhase(dirname(marker), 'tearing-down');
    const m = JSON.parse(readFileSync(marker, 'utf8')) as HostsReaperMarker;
    await reap(m);
    rmSync(marker, { force: true });
    return note('done');
  }
}
main()
  .catch((e) => note(`error: ${(e as Error).message}`))
  // Gone from the run's directory: a resume waiting for this reaper may go on (core/reaping.ts).
  .finally(() => marker && clearReaperRecord(dirname(marker)));
