// Benchmarks that print numbers (no pass/fail): npm run bench [-- --only NAME...] [--cold]
//   build-noop   fully cached `kflex-lab build all` (target < 1 s) and the in-process plan
//   kernel-noop  `kflex-lab build kernel` cached vs `make O=... bzImage` no-op on the same tree
//   kernel-cold  the smoke kernel from scratch (empty cache, empty ccache): only with --only kernel-cold
//   boot         boot-to-SSH of both VMs in parallel (`up`) vs a bare qemu-system-x86_64 boot to SSH
//   link         iperf3 throughput across the experiment link, per backend (socket, tap)
//   reproduce    warm `reproduce --profile smoke --quick` (with --cold: after removing the cache)
import { spawnSync } from 'node:child_process';
import { existsSync, rmSync, mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { LAB, ROOT } from '../helpers.js';
import { loadConfig } from '../../core/config.js';
import { plan } from '../../core/runner.js';
import { stageRegistry, TESTBED_TARGETS as ALL_TARGETS } from '../../lab/stages.js';
import { kernelMakeArgv } from '../../kernel/stage.js';
import { qemuArgv, MACS, LINK_ADDRS } from '../../vm/spec.js';
import { freePort } from '../../vm/state.js';
import { labKeys } from '../../core/keys.js';
import { sshArgv } from '../../core/ssh.js';

const args = process.argv.slice(2);
const only = args.includes('--only') ? args.slice(args.indexOf('--only') + 1).filter((a) => !a.startsWith('--')) : undefined;
const want = (n: string) => !only || only.includes(n);
const config = loadConfig({ profile: 'smoke' });

function timed(argv: string[], env: Record<string, string> = {}): { seconds: number; code: number; stdout: string; stderr: string } {
  const t = process.hrtime.bigint();
  const r = spawnSync(argv[0]!, argv.slice(1), { cwd: ROOT, env: { ...process.env, ...env }, encoding: 'utf8', maxBuffer: 64 << 20 });
  return { seconds: Number(process.hrtime.bigint() - t) / 1e9, code: r.status ?? 1, stdout: r.stdout, stderr: r.stderr };
}
const lab = (...a: string[]) => timed([process.execPath, LAB, ...a, '--profile', 'smoke']);
const line = (name: string, value: string) => console.log(`${name.padEnd(44)} ${value}`);

if (want('build-noop')) {
  lab('build', 'all'); // make sure it is cached
  const runs = [1, 2, 3].map(() => lab('build', 'all').seconds);
  line('build all, fully cached (CLI, 3 runs)', `${runs.map((s) => s.toFixed(2)).join(' / ')} s  (target < 1 s)`);
  const t = process.hrtime.bigint();
  const p = await plan(stageRegistry(config), ALL_TARGETS, config, config.cacheRoot);
  line('plan of all stages (in process)', `${(Number(process.hrtime.bigint() - t) / 1e6).toFixed(0)} ms, ${p.filter((s) => s.cached).length}/${p.length} cached`);
}

if (want('kernel-noop')) {
  const labRun = lab('build', 'kernel');
  const fp = (await plan(stageRegistry(config), ['kernel'], config, config.cacheRoot))[0]!.fingerprint;
  const work = join(config.cacheRoot, 'kernel-work', fp);
  line('kflex-lab build kernel (cached)', `${labRun.seconds.toFixed(2)} s`);
  if (existsSync(join(work, 'build', '.config'))) {
    // The same make line the stage ran (CC=ccache gcc when ccache is there): a different CC rebuilds everything.
    const ccache = timed(['ccache', '--version']).code === 0;
    const make = timed(kernelMakeArgv(join(work, 'kernel-src'), join(work, 'build'), ['bzImage'], { jobs: 2, ccache }));
    line('make O=... bzImage on the same tree (no-op)', `${make.seconds.toFixed(2)} s`);
  } else line('make O=... bzImage no-op', `no build tree at ${work}`);
}

async function bareBootToSsh(): Promise<number> {
  const k = (await plan(stageRegistry(config), ['kernel', 'image'], config, config.cacheRoot)).map((s) => join(config.cacheRoot, s.stage.id, s.fingerprint));
  const dir = mkdtempSync(join(tmpdir(), 'kflex-bare-'));
  const disk = join(dir, 'd.qcow2');
  timed(['qemu-img', 'create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', join(k[1]!, 'base.qcow2'), disk]);
  const port = await freePort();
  const argv = qemuArgv({ role: 'server', cpus: 1, memoryMb: 1024, accel: 'tcg', kernel: join(k[0]!, 'bzImage'), disk, sshPort: port, mgmtMac: MACS.server.mgmt, linkMac: MACS.server.link, linkAddr: LINK_ADDRS.server, mtu: 1500, link: { backend: 'socket', port: await freePort() }, serialLog: join(dir, 's.log'), qmpSocket: join(dir, 'q'), pidfile: join(dir, 'pid') });
  const keys = await labKeys(config.cacheRoot);
  const t = Date.now();
  timed(argv);
  let secs = NaN;
  while (Date.now() - t < 300_000) {
    const r = timed(sshArgv({ name: 'bare', host: '127.0.0.1', port, user: 'root', identity: keys.identity, knownHosts: keys.knownHosts, hostKeyAlias: keys.hostAlias }, ['true']));
    if (r.code === 0) {
      secs = (Date.now() - t) / 1000;
      break;
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
  timed(['pkill', '-F', join(dir, 'pid')]);
  rmSync(dir, { recursive: true, force: true });
  return secs;
}

if (only?.includes('kernel-cold')) {
  const tmp = mkdtempSync(join(tmpdir(), 'kflex-cold-'));
  const r = timed([process.execPath, LAB, 'build', 'kernel', '--profile', 'smoke'], { KFLEX_LAB_CACHE: join(tmp, 'cache'), CCACHE_DIR: join(tmp, 'ccache') });
  line('smoke kernel, cold (no cache, no ccache)', `${(r.seconds / 60).toFixed(1)} min, exit ${r.code}`);
  rmSync(tmp, { recursive: true, force: true });
}

if (want('boot')) {
  lab('down', '--vm', 'bench');
  const up = lab('up', '--vm', 'bench');
  const m = up.stderr.match(/ssh answers: server ([\d.]+) s, client ([\d.]+) s/);
  lab('down', '--vm', 'bench');
  const bare = await bareBootToSsh();
  const lab2 = m ? Math.max(Number(m[1]), Number(m[2])) : NaN;
  line('boot to SSH, both VMs in parallel (lab)', m ? `server ${m[1]} s, client ${m[2]} s; whole up ${up.seconds.toFixed(1)} s incl. XDP check` : `up failed: ${up.stderr.slice(-400)}`);
  line('boot to SSH, one bare qemu (same kernel+image)', `${bare.toFixed(1)} s`);
  line('lab overhead ratio (slower VM / bare)', `${(lab2 / bare).toFixed(2)}`);
}

if (want('link')) {
  for (const backend of ['socket', 'tap']) {
    const up = timed([process.execPath, LAB, 'up', '--profile', 'smoke', '--vm', `bench-${backend}`, '--set', `vms.link.backend=${backend}`]);
    if (up.code !== 0) {
      line(`iperf3 over ${backend}`, `up failed: ${up.stderr.split('\n').slice(-3).join(' ')}`);
      continue;
    }
    const ex = (vm: string, ...cmd: string[]) => timed([process.execPath, LAB, 'exec', vm, '--profile', 'smoke', '--vm', `bench-${backend}`, '--', ...cmd]);
    ex('server', 'iperf3', '-s', '-D', '-1');
    await new Promise((r) => setTimeout(r, 1000));
    const r = ex('client', 'iperf3', '-c', '10.77.0.1', '-t', '5', '-J');
    let mbit = NaN;
    try {
      mbit = JSON.parse(r.stdout).end.sum_received.bits_per_second / 1e6;
    } catch {
      /* reported below */
    }
    line(`iperf3 TCP over the ${backend} link (TCG)`, Number.isFinite(mbit) ? `${mbit.toFixed(0)} Mbit/s` : `failed: ${r.stdout.slice(-200)}${r.stderr.slice(-200)}`);
    timed([process.execPath, LAB, 'down', '--profile', 'smoke', '--vm', `bench-${backend}`]);
  }
}

if (want('reproduce')) {
  if (args.includes('--cold')) rmSync(config.cacheRoot, { recursive: true, force: true });
  const results = mkdtempSync(join(tmpdir(), 'kflex-bench-results-'));
  const r = timed([process.execPath, LAB, 'reproduce', '--profile', 'smoke', '--quick'], { KFLEX_LAB_RESULTS: results });
  line(`reproduce --profile smoke --quick (${args.includes('--cold') ? 'cold' : 'warm'})`, `${(r.seconds / 60).toFixed(1)} min, exit ${r.code}  (goal: cold 20 min, warm 3 min)`);
}
