// Benchmarks that print numbers (no pass/fail): npm run bench [-- --only NAME...] [--rounds N] [--pairs N] [--cold] [--full]
// Each line: what was measured, its median (of several runs, alternated with its yardstick where there is
// one), the yardstick, and issue 13's target. No test asserts a timing; the README's table copies these.
//   cli          `--help` (target < 0.2 s) and a fully cached `build all` (< 0.3 s) vs `node -e 0`; the tsx
//                fallback (development) and the cost of the freshness check, for reference
//   kernel-noop  `kflex-lab build kernel` cached vs `make O=... bzImage` no-op on the same tree
//   kernel-cold  the smoke kernel from scratch (empty cache, empty ccache): only with --only kernel-cold
//   boot         boot to SSH of both VMs in parallel (`up`, target <= 10 s per VM) vs the same kernel and
//                image booted by a bare qemu-system-x86_64 -kernel to the same point (SSH answering), two
//                at once as `up` does (target <= 1.2x), and one alone
//   probe        the native-XDP check and the capability probe on running VMs (target <= 5 s together)
//   harness      the same memcaslap command run by the lab (its cell runner) and by hand
//                (`kflex-lab exec client -- ...`) in the same VMs, alternated (target: within 2 %)
//   reproduce    warm `reproduce --profile smoke --quick` (<= 90 s) and full (<= 3 min); each cell's fixed
//                cost from its status.json (<= 3 s); with --cold the cache is removed first
//   link         iperf3 throughput across the experiment link, per backend (socket, tap)
//   lab-check    `lab check 1` from an edit of the student's file to its verdict with the VMs up (target <= 10 s),
//                the first check after a boot (it builds the graders' tools in the guests), and each exercise once
//   bmc          issue 18: `reproduce --profile smoke --only memcache` with variants [userspace, bmc] x 3 repetitions
//                (--source bmc=$KFLEX_BMC_SRC when set; without it the bmc cells are skipped and it says so): per
//                variant the median tps (min..max over the ok repetitions), BMC's hits per repetition, and
//                bmc/userspace as the ratio of medians with its spread over the repetition pairs
//   arena        issue 19: `reproduce --profile smoke --only datastructures --quick` x 3 repetitions (the update
//                pairs and the floor; --full: every pair, without --quick): for each arena_X/bpf_X pair the median
//                ratio arena ns/op / bpf ns/op (min..max over repetitions) beside the median empty_floor ns/op
//                Both read the run's cells.json through test/bench/summaries.ts (unit-tested on assembled records).
import { EXPERIMENTS } from '../../experiments/index.js';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, rmSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { LAB, ROOT } from '../helpers.js';
import { staleness } from '../../bin/freshness.mjs';
import { loadConfig } from '../../core/config.js';
import { plan } from '../../core/runner.js';
import { EventBus } from '../../core/events.js';
import { stageRegistry, buildTargets, testbedArtifacts, TESTBED_TARGETS as ALL_TARGETS } from '../../lab/stages.js';
import { vmDir } from '../../lab/vms.js';
import { kernelMakeArgv } from '../../kernel/stage.js';
import { qemuArgv, MACS, LINK_ADDRS, type VmRole } from '../../vm/spec.js';
import { freePort } from '../../vm/state.js';
import { VmTestbed } from '../../vm/testbed.js';
import { checkNativeXdp } from '../../core/xdp-check.js';
import { labKeys } from '../../core/keys.js';
import { sshArgv } from '../../core/ssh.js';
import { planCells, type CellRecord } from '../../experiments/cells.js';
import { probeCapabilities } from '../../experiments/requirements.js';
import { runCells } from '../../experiments/runner.js';
import { median } from '../../experiments/summary.js';
import { memcachedArgv, memcaslapArgv, memcaslapConfig } from '../../experiments/memcache.js';
import { parseMemcaslap } from '../../experiments/parsers.js';
import { SERVICE_PORT } from '../../core/guest.js';
import { arenaLines, arenaSummary, bmcLines, bmcSummary } from './summaries.js';

const args = process.argv.slice(2);
const only = args.includes('--only') ? args.slice(args.indexOf('--only') + 1).filter((a) => !a.startsWith('--')) : undefined;
const want = (n: string) => !only || only.includes(n);
const rounds = args.includes('--rounds') ? Number(args[args.indexOf('--rounds') + 1]) : 3;
const pairs = Math.max(5, args.includes('--pairs') ? Number(args[args.indexOf('--pairs') + 1]) : 5);
const config = loadConfig({ profile: 'smoke' });
const BENCH_VM = 'bench';

function timed(argv: string[], env: Record<string, string> = {}): { seconds: number; code: number; stdout: string; stderr: string } {
  const t = process.hrtime.bigint();
  const r = spawnSync(argv[0]!, argv.slice(1), { cwd: ROOT, env: { ...process.env, ...env }, encoding: 'utf8', maxBuffer: 64 << 20 });
  return { seconds: Number(process.hrtime.bigint() - t) / 1e9, code: r.status ?? 1, stdout: r.stdout, stderr: r.stderr };
}
const lab = (...a: string[]) => timed([process.execPath, LAB, ...a, '--profile', 'smoke']);
const line = (name: string, value: string) => console.log(`${name.padEnd(52)} ${value}`);
const s2 = (x: number) => `${x.toFixed(2)} s`;
const s1 = (x: number) => `${x.toFixed(1)} s`;
const range = (xs: number[], f = s2) => `median ${f(median(xs))} (${f(Math.min(...xs))}-${f(Math.max(...xs))}, n=${xs.length})`;

/** Alternate A and B n times (A B A B ...), so a drift of the machine's speed hits both alike. */
function alternate<T>(n: number, a: () => T, b: () => T): { a: T[]; b: T[] } {
  const out = { a: [] as T[], b: [] as T[] };
  for (let i = 0; i < n; i++) {
    out.a.push(a());
    out.b.push(b());
  }
  return out;
}

const cpuModel = readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.*)/)?.[1] ?? '?';
const cpuCount = readdirSync('/sys/devices/system/cpu').filter((d) => /^cpu\d+$/.test(d)).length;
const loadAvg = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
console.log(`host: ${cpuModel}, ${cpuCount} CPUs, load ${loadAvg}; medians of alternated runs`);

if (want('cli') || want('build-noop')) {
  const stale = staleness(ROOT);
  if (stale) line('WARNING: the compiled CLI is not current', `${stale}: timings below are of the tsx fallback; npm run build first`);
  lab('build', 'all'); // make sure it is cached
  const node0 = () => timed([process.execPath, '-e', '0']).seconds;
  const help = alternate(7, () => timed([process.execPath, LAB, '--help']).seconds, node0);
  line('kflex-lab --help', `${range(help.a)}; yardstick node -e 0 ${s2(median(help.b))}  (target < 0.2 s)`);
  const build = alternate(7, () => lab('build', 'all').seconds, node0);
  line('kflex-lab build all, fully cached', `${range(build.a)}; yardstick node -e 0 ${s2(median(build.b))}  (target < 0.3 s)`);
  const dev = [1, 2, 3].map(() => timed([process.execPath, '--import', 'tsx', join(ROOT, 'lab.ts'), '--help']).seconds);
  line('  for reference: --help through tsx (development)', range(dev));
  const checks = Array.from({ length: 21 }, () => {
    const t = process.hrtime.bigint();
    staleness(ROOT);
    return Number(process.hrtime.bigint() - t) / 1e6;
  });
  line("  for reference: the launcher's freshness check", `median ${median(checks).toFixed(2)} ms`);
}

if (want('kernel-noop')) {
  const labRun = lab('build', 'kernel');
  const fp = (await plan(stageRegistry(config), ['kernel'], config, config.cacheRoot))[0]!.fingerprint;
  const work = join(config.cacheRoot, 'kernel-work', fp);
  line('kflex-lab build kernel (cached)', s2(labRun.seconds));
  if (existsSync(join(work, 'build', '.config'))) {
    // The same make line the stage ran (CC=ccache gcc when ccache is there): a different CC rebuilds everything.
    const ccache = timed(['ccache', '--version']).code === 0;
    const make = timed(kernelMakeArgv(join(work, 'kernel-src'), join(work, 'build'), ['bzImage'], { jobs: 2, ccache }));
    line('make O=... bzImage on the same tree (no-op)', s2(make.seconds));
  } else line('make O=... bzImage no-op', `no build tree at ${work}`);
}

/**
 * Boot n bare QEMUs at once (the lab's qemu argv for the same kernel and image, the socket link, no lab
 * around them) and return each one's seconds until `ssh true` answers, polled as the lab polls.
 */
async function bareBootToSsh(n: number): Promise<number[]> {
  const k = (await plan(stageRegistry(config), ['kernel', 'image'], config, config.cacheRoot)).map((s) => join(config.cacheRoot, s.stage.id, s.fingerprint));
  const keys = await labKeys(config.cacheRoot);
  const linkPort = await freePort();
  const vms = await Promise.all(
    (['server', 'client'] as VmRole[]).slice(0, n).map(async (role) => {
      const dir = mkdtempSync(join(tmpdir(), 'kflex-bare-'));
      const disk = join(dir, 'd.qcow2');
      timed(['qemu-img', 'create', '-q', '-f', 'qcow2', '-F', 'qcow2', '-b', join(k[1]!, 'base.qcow2'), disk]);
      const port = await freePort();
      const argv = qemuArgv({
        role,
        cpus: 1,
        memoryMb: 1024,
        accel: 'tcg',
        kernel: join(k[0]!, 'bzImage'),
        disk,
        sshPort: port,
        mgmtMac: MACS[role].mgmt,
        linkMac: MACS[role].link,
        linkAddr: LINK_ADDRS[role],
        mtu: 1500,
        link: { backend: 'socket', port: linkPort },
        serialLog: join(dir, 's.log'),
        qmpSocket: join(dir, 'q'),
        pidfile: join(dir, 'pid'),
      });
      return { dir, argv, port };
    }),
  );
  const t = Date.now();
  for (const v of vms) timed(v.argv);
  const secs = await Promise.all(
    vms.map(async (v) => {
      while (Date.now() - t < 300_000) {
        const a = sshArgv(
          {
            name: 'bare',
            host: '127.0.0.1',
            port: v.port,
            user: 'root',
            identity: keys.identity,
            knownHosts: keys.knownHosts,
            hostKeyAlias: keys.hostAlias,
            options: { ConnectTimeout: '20', ControlPath: 'none' },
          },
          ['true'],
        );
        // Asynchronous: both VMs are polled at once, as the lab polls them.
        const r = await new Promise<number>((res) => spawn(a[0]!, a.slice(1), { stdio: 'ignore' }).on('exit', (code) => res(code ?? 1)));
        if (r === 0) return (Date.now() - t) / 1000;
        await new Promise((r) => setTimeout(r, 1000));
      }
      return NaN;
    }),
  );
  for (const v of vms) timed(['pkill', '-F', join(v.dir, 'pid')]);
  await new Promise((r) => setTimeout(r, 1000));
  for (const v of vms) rmSync(v.dir, { recursive: true, force: true });
  return secs;
}

if (only?.includes('kernel-cold')) {
  const tmp = mkdtempSync(join(tmpdir(), 'kflex-cold-'));
  const r = timed([process.execPath, LAB, 'build', 'kernel', '--profile', 'smoke'], { KFLEX_LAB_CACHE: join(tmp, 'cache'), CCACHE_DIR: join(tmp, 'ccache') });
  line('smoke kernel, cold (no cache, no ccache)', `${(r.seconds / 60).toFixed(1)} min, exit ${r.code}`);
  rmSync(tmp, { recursive: true, force: true });
}

/** `up` of the bench VM set: each VM's seconds to SSH as `up` reports them, and the whole command. */
function labUp(): { server: number; client: number; whole: number } | undefined {
  lab('down', '--vm', BENCH_VM);
  const up = lab('up', '--vm', BENCH_VM);
  const m = up.stderr.match(/ssh answers: server ([\d.]+) s, client ([\d.]+) s/);
  if (!m || up.code !== 0) {
    line('kflex-lab up', `failed (exit ${up.code}): ${up.stderr.slice(-600)}`);
    return undefined;
  }
  return { server: Number(m[1]), client: Number(m[2]), whole: up.seconds };
}

if (want('boot')) {
  const labSlow: number[] = [];
  const whole: number[] = [];
  const barePair: number[] = [];
  const ratios: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const u = labUp();
    lab('down', '--vm', BENCH_VM);
    const b = Math.max(...(await bareBootToSsh(2)));
    if (!u) break;
    labSlow.push(Math.max(u.server, u.client));
    whole.push(u.whole);
    barePair.push(b);
    ratios.push(Math.max(u.server, u.client) / b);
  }
  const alone = await bareBootToSsh(1);
  if (labSlow.length) {
    line('boot to SSH, both VMs at once (kflex-lab up)', `${range(labSlow, s1)} for the slower VM  (target <= 10 s)`);
    line('boot to SSH, two bare qemu -kernel at once', range(barePair, s1));
    line(
      '  ratio up / bare, pair by pair',
      `median ${median(ratios).toFixed(2)} (${Math.min(...ratios).toFixed(2)}-${Math.max(...ratios).toFixed(2)})  (target <= 1.2)`,
    );
    line('  for reference: one bare qemu alone', s1(alone[0]!));
    line('  for reference: whole `up` (+ stages cached, XDP check)', range(whole, s1));
  }
}

/** The bench VM set, booted if it is not up; an attached testbed over it. */
async function benchTestbed(): Promise<VmTestbed | undefined> {
  const dir = vmDir(config, BENCH_VM);
  if (!existsSync(join(dir, 'state.json')) && !labUp()) return undefined;
  return VmTestbed.attach(dir, config.cacheRoot, config.profile);
}

if (want('probe')) {
  const t = await benchTestbed();
  if (t) {
    const files = testbedArtifacts(await buildTargets(config, ALL_TARGETS, new EventBus()));
    const facts = { nativeXdp: true, serverMemoryMb: t.serverMemoryMb, serverCpus: t.serverCpus, accel: t.accel, linkIf: t.link.serverIf };
    const xdp: number[] = [];
    const caps: number[] = [];
    for (let i = 0; i < 5; i++) {
      let t0 = Date.now();
      const x = await checkNativeXdp({ server: t.server, client: t.client, serverIf: t.link.serverIf, serverIp: t.link.serverIp }, files.probeObject);
      xdp.push((Date.now() - t0) / 1000);
      if (x.counted !== x.sent) line('native-XDP check', `counted ${x.counted} of ${x.sent}`);
      t0 = Date.now();
      await probeCapabilities(t.server, t.client, EXPERIMENTS, facts);
      caps.push((Date.now() - t0) / 1000);
    }
    line('native-XDP check (on running VMs)', range(xdp));
    line('capability probe', range(caps));
    line('  both together', `median ${s2(median(xdp.map((x, i) => x + caps[i]!)))}  (target <= 5 s)`);
  }
}

if (want('harness')) {
  const t = await benchTestbed();
  if (t) {
    const caps = await probeCapabilities(t.server, t.client, EXPERIMENTS, {
      nativeXdp: true,
      serverMemoryMb: t.serverMemoryMb,
      serverCpus: t.serverCpus,
      accel: t.accel,
      linkIf: t.link.serverIf,
    });
    // The quick cell (no warm-up, so both sides run exactly one client command), measured for 10 s: a 5 s
    // run under TCG is mostly noise.
    const quick = planCells(config.profile, { only: ['memcache'], quick: true }, EXPERIMENTS).find((c) => c.variant.id === 'userspace')!;
    const cell = { ...quick, settings: { ...quick.settings, duration_s: 10 } };
    const p = cell.params;
    const load = { threads: Number(p.threads ?? 1), concurrency: Number(p.concurrency ?? 8), udp: true, seconds: cell.settings.duration_s };
    const client = memcaslapArgv(t.link.serverIp, load);
    const server = memcachedArgv(caps.serverCpus);
    // The options before '--': everything after it is the remote command.
    const ex = (vm: string, ...cmd: string[]) => timed([process.execPath, LAB, 'exec', vm, '--profile', 'smoke', '--vm', BENCH_VM, '--', ...cmd]);
    const runDir = mkdtempSync(join(tmpdir(), 'kflex-bench-harness-'));
    const byLab = async (): Promise<CellRecord> =>
      (
        await runCells([{ ...cell, path: `runs/${Date.now()}` }], {
          runDir,
          server: t.server,
          client: t.client,
          serverIp: t.link.serverIp,
          linkIf: t.link.serverIf,
          caps,
          bus: new EventBus(),
        })
      ).records[0]!;
    const byHand = (): number => {
      ex('server', ...server, '-d');
      ex('server', 'sh', '-c', `for i in $(seq 1 300); do ss -Hltn "sport = :${SERVICE_PORT}" | grep -q . && exit 0; sleep 0.1; done; exit 1`);
      ex('client', 'sh', '-c', 'printf %s "$1" > /tmp/memcaslap.cfg', 'cfg', memcaslapConfig(String(p.set_get ?? '10:90'), Number(p.value_size ?? 32)));
      const out = ex('client', ...client);
      ex('server', 'sh', '-c', 'pkill -x memcached; for i in $(seq 1 100); do pgrep -x memcached > /dev/null || exit 0; sleep 0.1; done; exit 1');
      return parseMemcaslap(out.stdout).tps ?? NaN;
    };
    const labTps: number[] = [];
    const handTps: number[] = [];
    const fixed: number[] = [];
    for (let i = 0; i < pairs; i++) {
      const r = await byLab();
      labTps.push(r.metrics?.tps ?? NaN);
      if (r.fixed_seconds !== undefined) fixed.push(r.fixed_seconds);
      handTps.push(byHand());
    }
    const ratios = labTps.map((x, i) => x / handTps[i]!);
    line(
      `memcaslap ${cell.settings.duration_s} s by the lab's cell runner`,
      `median ${median(labTps).toFixed(0)} tps (${labTps.map((x) => x.toFixed(0)).join(' ')})`,
    );
    line('the same command by hand (kflex-lab exec client)', `median ${median(handTps).toFixed(0)} tps (${handTps.map((x) => x.toFixed(0)).join(' ')})`);
    line(
      '  ratio lab / by hand, pair by pair',
      `median ${median(ratios).toFixed(3)} (${Math.min(...ratios).toFixed(3)}-${Math.max(...ratios).toFixed(3)}, n=${ratios.length})  (target 0.98-1.02)`,
    );
    if (fixed.length) line("  those cells' fixed cost (status.json)", `${range(fixed)}  (target <= 3 s)`);
    rmSync(runDir, { recursive: true, force: true });
  }
}
if (want('probe') || want('harness')) lab('down', '--vm', BENCH_VM);

/** Every ok cell's fixed cost and phases (status.json) in a run directory. */
function cellCosts(runDir: string): { fixed: number[]; phases: Record<string, number[]> } {
  const fixed: number[] = [];
  const phases: Record<string, number[]> = {};
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(d, e.name));
      else if (e.name === 'status.json') {
        const r = JSON.parse(readFileSync(join(d, e.name), 'utf8')) as CellRecord;
        if (r.status !== 'ok' || r.fixed_seconds === undefined) continue;
        fixed.push(r.fixed_seconds);
        for (const [k, v] of Object.entries(r.phases ?? {})) {
          phases[k] ??= [];
          phases[k].push(v);
        }
      }
    }
  };
  if (existsSync(join(runDir, 'runs'))) walk(join(runDir, 'runs'));
  return { fixed, phases };
}

if (want('reproduce')) {
  if (args.includes('--cold')) rmSync(config.cacheRoot, { recursive: true, force: true });
  const how = args.includes('--cold') ? 'cold' : 'warm';
  for (const [label, extra, target] of [
    ['--quick', ['--quick'], 'target <= 90 s'],
    ['full', [], 'target <= 3 min'],
  ] as const) {
    const results = mkdtempSync(join(tmpdir(), 'kflex-bench-results-'));
    const r = timed([process.execPath, LAB, 'reproduce', '--profile', 'smoke', ...extra], { KFLEX_LAB_RESULTS: results });
    line(
      `reproduce --profile smoke ${label} (${how})`,
      `${Math.floor(r.seconds / 60)}m${String(Math.round(r.seconds % 60)).padStart(2, '0')}s, exit ${r.code}  (${target})`,
    );
    const run = readdirSync(results).find((d) => /^\d{8}T/.test(d) && !d.endsWith('.tar.gz'));
    const c = run ? cellCosts(join(results, run)) : { fixed: [], phases: {} };
    if (c.fixed.length) {
      line(`  fixed cost per cell (${label}, status.json)`, `${range(c.fixed)}  (target <= 3 s)`);
      line(
        '  phases, median s',
        Object.entries(c.phases)
          .map(([k, v]) => `${k} ${median(v).toFixed(2)}`)
          .join(', '),
      );
    }
    rmSync(results, { recursive: true, force: true });
    if (args.includes('--cold')) break; // one cold run is enough
  }
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
    line(
      `iperf3 TCP over the ${backend} link (TCG)`,
      Number.isFinite(mbit) ? `${mbit.toFixed(0)} Mbit/s` : `failed: ${r.stdout.slice(-200)}${r.stderr.slice(-200)}`,
    );
    timed([process.execPath, LAB, 'down', '--profile', 'smoke', '--vm', `bench-${backend}`]);
  }
}

if (want('lab-check')) {
  const vm = 'bench-labs';
  const solutions = process.env.KFLEX_LAB_SOLUTIONS ?? join(ROOT, 'labs-solutions');
  const work = mkdtempSync(join(tmpdir(), 'kflex-bench-lab-'));
  const dir = (n: string) => join(work, n);
  const reference = (n: string) => readFileSync(join(solutions, n, 'reference.bpf.c'), 'utf8');
  const check = (n: string) => lab('lab', 'check', n.split('-')[0]!, '--dir', dir(n), '--vm', vm);
  const verdict = (r: { code: number; stdout: string }) => r.stdout.match(/verdict: .*/)?.[0] ?? `exit ${r.code}`;
  lab('down', '--vm', vm);
  const up = lab('up', '--vm', vm);
  line('lab-check: VMs up (kflex-lab up)', `${s1(up.seconds)}, exit ${up.code}`);
  lab('lab', 'start', '1', '--dir', dir('1-proto-count'));
  // "An edit": the student's file changes (a comment more), then `lab check 1` runs to its verdict.
  const edit = (i: number) => writeFileSync(join(dir('1-proto-count'), 'prog.bpf.c'), `${reference('1-proto-count')}\n// edit ${i}\n`);
  edit(0);
  const first = check('1-proto-count');
  line('lab check 1, first after the boot (+ tools built)', `${s1(first.seconds)}, ${verdict(first)}`);
  const steady = Array.from({ length: Math.max(3, rounds) }, (_, i) => {
    edit(i + 1);
    return check('1-proto-count');
  });
  const secs = steady.map((r) => r.seconds);
  line('lab check 1 from an edit to its verdict, VMs up', `${range(secs, s1)}, ${verdict(steady.at(-1)!)}  (target <= 10 s)`);
  const exercises = readdirSync(solutions).filter((d) => /^\d+-/.test(d));
  for (const n of exercises.sort()) {
    mkdirSync(dir(n), { recursive: true });
    writeFileSync(join(dir(n), 'prog.bpf.c'), reference(n));
    const r = check(n);
    line(`  lab check ${n} (reference), VMs up`, `${s1(r.seconds)}, ${verdict(r)}`);
  }
  lab('down', '--vm', vm);
  rmSync(work, { recursive: true, force: true });
}

/**
 * One `reproduce --profile smoke` into a temporary results directory: its time and exit code, the run's
 * cells.json records and the VMs' accelerator (manifest.json), and the tail of its stderr when it made no run.
 */
function reproduceCells(argv: string[]): { seconds: number; code: number; records?: CellRecord[]; accel?: string; tail: string } {
  const results = mkdtempSync(join(tmpdir(), 'kflex-bench-results-'));
  try {
    const r = timed([process.execPath, LAB, 'reproduce', '--profile', 'smoke', ...argv], { KFLEX_LAB_RESULTS: results });
    const run = readdirSync(results).find((d) => /^\d{8}T/.test(d) && !d.endsWith('.tar.gz'));
    const read = (f: string) => (run && existsSync(join(results, run, f)) ? JSON.parse(readFileSync(join(results, run, f), 'utf8')) : undefined);
    const records = read('cells.json') as CellRecord[] | undefined;
    const accel = (read('manifest.json') as { testbed?: { accel?: string } } | undefined)?.testbed?.accel;
    const tail = `${r.stderr}`.trim().split('\n').slice(-4).join(' / ');
    return { seconds: r.seconds, code: r.code, ...(records ? { records } : {}), ...(accel ? { accel } : {}), tail };
  } finally {
    rmSync(results, { recursive: true, force: true });
  }
}
const minSec = (x: number) => `${Math.floor(x / 60)}m${String(Math.round(x % 60)).padStart(2, '0')}s`;
const accelNote = (a?: string) => (a === 'tcg' ? 'TCG: functional numbers, not performance-comparable' : `accel ${a ?? 'unknown'}`);

if (want('bmc')) {
  const src = process.env.KFLEX_BMC_SRC;
  const sets = ['--set', 'experiments.memcache.variants=[userspace,bmc]', '--set', 'experiments.memcache.repetitions=3'];
  if (!src) line('bmc: KFLEX_BMC_SRC is not set', 'the bmc stage fetches rs3lab/bmc-cache itself; where it cannot, the bmc cells are skipped');
  const r = reproduceCells(['--only', 'memcache', ...sets, ...(src ? ['--source', `bmc=${src}`] : [])]);
  line(
    'bmc: reproduce --profile smoke --only memcache',
    `[userspace, bmc] x 3 reps${src ? `, --source bmc=${src}` : ', no --source bmc'}: ${minSec(r.seconds)}, exit ${r.code}; ${accelNote(r.accel)}`,
  );
  if (!r.records) line('  no cells.json', r.tail);
  else for (const [name, value] of bmcLines(bmcSummary(r.records), !!src)) line(name, value);
}

if (want('arena')) {
  // --quick keeps smoke's quick filter (the floor and the three update pairs): under TCG every benchmark reloads
  // its skeleton, and the quick set fits the bench's time. --full runs smoke's whole Zipfian filter instead.
  const full = args.includes('--full');
  const sets = ['--set', 'experiments.datastructures.repetitions=3', '--set', 'experiments.datastructures.quick.repetitions=3'];
  const r = reproduceCells(['--only', 'datastructures', ...(full ? [] : ['--quick']), ...sets]);
  line(
    `arena: reproduce --profile smoke --only datastructures${full ? '' : ' --quick'}`,
    `x 3 reps, ${full ? 'every Zipfian benchmark (--full)' : 'update pairs + floor (--quick; --full for all)'}: ` +
      `${minSec(r.seconds)}, exit ${r.code}; ${accelNote(r.accel)}`,
  );
  if (!r.records) line('  no cells.json', r.tail);
  else for (const [name, value] of arenaLines(arenaSummary(r.records))) line(name, value);
}
