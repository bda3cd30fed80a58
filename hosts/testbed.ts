import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { startReaperProcess } from '../core/reaping.js';
import type { EventBus } from '../core/events.js';
import type { Testbed, LinkFacts } from '../core/testbed.js';
import type { TestbedProvider } from '../core/testbed.js';
import { LabError, ExitCode } from '../core/errors.js';
import { ledgerPath, stopTracked, TrackedHost } from '../core/processes.js';
import type { Host } from '../core/host.js';
import { SERVICE_PORT } from '../core/guest.js';
import { checkNativeXdp, detachProbe, type XdpCheckResult } from '../core/xdp-check.js';
import { loadHostsConfig, type HostsConfig, type Role } from './config.js';
import { HostPair, inspectHosts, xdpRefusalOf, ROLES, type Inspection } from './check.js';
import { parseLinkXdp, clockOffset, type HostFacts } from './facts.js';

/** Programs whose instances on the hosts are noted before a run: the user's own, left alone, but worth a warning. */
const SERVICE_NAMES = { server: ['ffkx', 'ffkx-bench', 'memcached', 'redis-server'], client: ['memcaslap', 'memtier_benchmark', 'redis-benchmark'] };

/** pids of programs of those names already running on a host (`pgrep -x`, read-only): never stopped by the lab. */
export async function runningByName(host: Host, role: Role): Promise<Record<string, number[]>> {
  // pgrep -x matches the kernel's 15-character comm: memtier_benchmark runs as memtier_benchma.
  const names = SERVICE_NAMES[role].map((n) => n.slice(0, 15));
  const r = await host.exec(['sh', '-c', 'for n in "$@"; do printf "%s:" "$n"; pgrep -x "$n" | tr "\\n" " "; echo; done', 'pids', ...names], {
    allowFailure: true,
    timeoutMs: 30_000,
  });
  const byComm = parsePgrep(r.stdout);
  return Object.fromEntries(SERVICE_NAMES[role].map((n) => [n, byComm[n.slice(0, 15)] ?? []]));
}

/** Lines "name:pid pid ..." from runningByName's loop. */
export function parsePgrep(text: string): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  for (const line of text.split('\n')) {
    const m = line.match(/^([^:]+):(.*)$/);
    if (m) out[m[1]!] = m[2]!.trim().split(/\s+/).filter(Boolean).map(Number);
  }
  return out;
}

/** Programs of the cells' names that ran before the run: the user's, never stopped by the lab; but a server on the service port makes cells fail. */
function warnAlreadyRunning(before: Record<Role, Record<string, number[]>>, bus: EventBus): void {
  const busy = ROLES.flatMap((r) =>
    Object.entries(before[r])
      .filter(([, pids]) => pids.length)
      .map(([n, pids]) => `${r}: ${n} (pid ${pids.join(', ')})`),
  );
  if (busy.length)
    bus.emit({
      type: 'warn',
      scope: 'hosts',
      message: `already running before the run (left alone): ${busy.join('; ')}; a server on port ${SERVICE_PORT} will make the cells that start one fail`,
    });
}

/** A manifest entry for a host: what it is, not how to log into it beyond its destination. */
function hostRecord(f: HostFacts, ip: string | undefined, sudo: boolean): Record<string, unknown> {
  return {
    destination: f.destination,
    hostname: f.hostname,
    kernel: f.kernel,
    os: f.os.pretty,
    cpu_model: f.cpu.model,
    cpus: f.cpus,
    memory_mb: f.memory.totalMb,
    la57: f.cpu.la57,
    link: {
      interface: f.linkIf,
      address: ip,
      driver: f.nic.driver,
      driver_version: f.nic.version,
      firmware: f.nic.firmware,
      bus: f.nic.busInfo,
      mtu: f.interfaces.find((i) => i.ifname === f.linkIf)?.mtu,
    },
    sudo,
  };
}

/**
 * Two machines of the user's, reached over OpenSSH, as a Testbed. Nothing is installed or booted: the lab
 * attaches its probe to the server's link NIC (and only that NIC) to prove native XDP, runs the cells, and
 * on down() stops what the cells started and still runs (as the hosts' ledger recorded it, by PID and start
 * time: never by name) and checks that no XDP program stays attached. A detached reaper (hosts/reaper.ts)
 * does the same if the lab is killed before down().
 */
export class SshTestbed implements Testbed {
  readonly kind = 'hosts';
  readonly accel = 'native' as const;
  private stopped = false;
  private failures: Partial<Record<Role, number>> = {};
  private lastHealth = { at: 0, why: undefined as string | undefined };
  private readonly record: Record<string, unknown>;
  private readonly tracked: Record<Role, TrackedHost>;

  private constructor(
    readonly cfg: HostsConfig,
    private readonly pair: HostPair,
    readonly ins: Inspection,
    readonly link: LinkFacts,
    private readonly ledger: string,
    private readonly reaperMarker: string,
    private readonly bus: EventBus,
    private readonly logDir: string,
  ) {
    // Every command the cells run on the hosts is recorded in the ledger before it runs.
    this.tracked = { server: new TrackedHost(pair.server, ledger), client: new TrackedHost(pair.client, ledger) };
    const { server: s, client: c } = ins.facts as Record<Role, HostFacts>;
    this.record = {
      testbed: 'hosts',
      file: cfg.file,
      server: hostRecord(s, link.serverIp, cfg.server.sudo),
      client: hostRecord(c, link.clientIp, cfg.client.sudo),
      link: link.describe,
      xdp_check: link.xdpCheck,
    };
  }

  get server(): Host {
    return this.tracked.server;
  }
  get client(): Host {
    return this.tracked.client;
  }
  get serverMemoryMb() {
    return this.ins.facts.server!.memory.totalMb;
  }
  get serverCpus() {
    return this.ins.facts.server!.cpus;
  }
  /** One object for the whole run: down() adds what it found, and the run's last manifest write keeps it. */
  get facts(): Record<string, unknown> {
    return this.record;
  }

  /** Inspect both hosts, refuse what is unsafe, prove native XDP on the server's link NIC, note what runs. */
  static async up(cfg: HostsConfig, o: { probeObject: string; bus: EventBus; logDir: string }): Promise<SshTestbed> {
    const step = (message: string) => o.bus.emit({ type: 'step', scope: 'hosts', message });
    const pair = HostPair.open(cfg);
    try {
      step(`reaching server ${cfg.server.destination} and client ${cfg.client.destination} over ssh${cfg.sshConfig ? ` -F ${cfg.sshConfig}` : ''}`);
      const ins = await inspectHosts(pair);
      mkdirSync(o.logDir, { recursive: true });
      for (const role of ROLES) if (ins.raw[role]) writeFileSync(join(o.logDir, `${role}.facts.txt`), ins.raw[role]!);
      if (ins.refusals.length)
        throw new LabError(
          `hosts testbed ${cfg.file} refused:\n${ins.refusals.map((r) => `  - ${r.why}`).join('\n')}`,
          ExitCode.usage,
          `kflex-lab hosts check --testbed ${cfg.file}`,
        );
      const s = ins.facts.server!;
      const c = ins.facts.client!;
      step(
        `server ${s.hostname}: Linux ${s.kernel}, ${s.cpus} CPUs, ${s.linkIf} (${s.nic.driver ?? '?'}) ${ins.serverIp}; ` +
          `client ${c.hostname}: Linux ${c.kernel}, ${c.linkIf} (${c.nic.driver ?? '?'}) ${ins.clientIp}`,
      );
      let xdp: XdpCheckResult | undefined;
      let xdpWhy: string | undefined;
      try {
        xdp = await checkNativeXdp({ server: pair.server, client: pair.client, serverIf: s.linkIf, serverIp: ins.serverIp! }, o.probeObject);
        if (xdp.mode !== 'driver') xdpWhy = `XDP ran in ${xdp.mode} mode, not driver mode`;
        else if (xdp.counted !== xdp.sent) xdpWhy = `sent ${xdp.sent} UDP datagrams to port ${xdp.port}, the probe counted ${xdp.counted}`;
      } catch (e) {
        xdpWhy = xdpRefusalOf(e as Error, s.nic.driver, s.linkIf);
      }
      // A NIC without native XDP still runs every user-space cell: its XDP cells are skipped with the reason.
      if (xdpWhy) o.bus.emit({ type: 'warn', scope: 'xdp', message: `native XDP not verified on the server's ${s.linkIf}: ${xdpWhy}` });
      else
        o.bus.emit({
          type: 'step',
          scope: 'xdp',
          message: `native XDP on the server's ${s.linkIf} (${s.nic.driver}): mode ${xdp!.mode}, sent ${xdp!.sent}, counted ${xdp!.counted}; detached`,
        });
      const [cs, cc] = await Promise.all([clockOffset(pair.server.asLoginUser()), clockOffset(pair.client.asLoginUser())]);
      const before = { server: await runningByName(pair.server, 'server'), client: await runningByName(pair.client, 'client') };
      const nic = (f: HostFacts) => `${f.linkIf} (${f.nic.driver ?? 'unknown driver'}${f.nic.firmware ? `, fw ${f.nic.firmware}` : ''})`;
      const link: LinkFacts = {
        serverIf: s.linkIf,
        serverIp: ins.serverIp!,
        clientIp: ins.clientIp!,
        nativeXdp: !xdpWhy,
        xdpCheck: xdp ? { ...xdp, ...(xdpWhy ? { refused: xdpWhy } : {}) } : { refused: xdpWhy },
        describe: `hosts: server ${s.hostname} ${nic(s)} ${ins.serverIp} <-> client ${c.hostname} ${nic(c)} ${ins.clientIp}`,
      };
      const ledger = ledgerPath(`${basename(o.logDir)}-${process.pid}-${Date.now().toString(36)}`);
      const marker = join(o.logDir, 'hosts-reaper.json');
      startHostsReaper(process.pid, marker, { hostsFile: cfg.file, ledger, serverIf: s.linkIf });
      const t = new SshTestbed(cfg, pair, ins, link, ledger, marker, o.bus, o.logDir);
      t.record.ledger = ledger;
      t.record.clock_offset_ms = {
        client_minus_server: Math.round((cc.offsetMs - cs.offsetMs) * 10) / 10,
        uncertainty: Math.round((cc.uncertaintyMs + cs.uncertaintyMs) * 10) / 10,
      };
      t.record.already_running = before;
      warnAlreadyRunning(before, o.bus);
      const skew = Math.abs(cc.offsetMs - cs.offsetMs);
      if (skew > 100 + cc.uncertaintyMs + cs.uncertaintyMs)
        o.bus.emit({
          type: 'warn',
          scope: 'hosts',
          message: `the hosts' clocks differ by ${skew.toFixed(0)} ms: their logs will not line up (run NTP on both)`,
        });
      return t;
    } catch (e) {
      await pair.close();
      throw e;
    }
  }

  /** Both hosts answer SSH (checked at most every 5 s; a host is gone after two failures in a row). */
  async health(): Promise<string | undefined> {
    if (Date.now() - this.lastHealth.at < 5000) return this.lastHealth.why;
    this.lastHealth.at = Date.now();
    for (const role of ROLES) {
      const r = await this.pair
        .host(role)
        .asLoginUser()
        .exec(['true'], { allowFailure: true, timeoutMs: 20_000 })
        .catch((e: Error) => ({ code: 255, stderr: e.message }));
      if (r.code === 0) {
        this.failures[role] = 0;
        continue;
      }
      this.failures[role] = (this.failures[role] ?? 0) + 1;
      if (this.failures[role]! >= 2) {
        this.lastHealth.why = `the ${role} (${this.cfg[role].destination}) does not answer SSH: ${r.stderr.trim().split('\n').at(-1) ?? `exit ${r.code}`}`;
        return this.lastHealth.why;
      }
    }
    this.lastHealth.why = undefined;
    return undefined;
  }

  /**
   * Stop what the cells started and still runs (the ledger's processes whose PID and start time match),
   * detach XDP from the server's link NIC, and check that both held. Nothing else is stopped.
   */
  async down(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    const report: Record<string, unknown> = {};
    const problems: string[] = [];
    try {
      for (const role of ROLES) {
        const g = await stopTracked(this.tracked[role], { graceS: 10 });
        report[`${role}_stopped`] = g.stopped.map((p) => `${p.tag} ${p.pid} (SIG${p.signal})`);
        if (g.survived.length) problems.push(`${role}: still running after SIGKILL: ${g.survived.map((p) => `${p.tag} ${p.pid}`).join(', ')}`);
        else await this.pair.host(role).exec(['rm', '-f', this.ledger], { allowFailure: true, timeoutMs: 30_000 });
      }
      const ifname = this.link.serverIf;
      await detachProbe(this.pair.server, ifname);
      const x = await this.pair.server.asLoginUser().exec(['ip', '-j', 'link', 'show', 'dev', ifname], { allowFailure: true, timeoutMs: 30_000 });
      const xdp = x.code === 0 ? parseLinkXdp(x.stdout) : undefined;
      report.xdp_detached = xdp ? !xdp.attached : 'unknown';
      if (!xdp) problems.push(`server: cannot read ${ifname} to check that XDP is detached: ${x.stderr.trim()}`);
      else if (xdp.attached) problems.push(`server: an XDP program (id ${xdp.progId ?? '?'}) is still attached to ${ifname}`);
    } catch (e) {
      problems.push(`teardown: ${(e as Error).message.split('\n')[0]}`);
    } finally {
      await this.pair.close();
      // Torn down by the lab itself: the reaper has nothing left to do.
      rmSync(this.reaperMarker, { force: true });
    }
    report.left_running = problems;
    this.record.down = report;
    if (problems.length) this.bus.emit({ type: 'warn', scope: 'hosts', message: `left behind on the hosts: ${problems.join('; ')}` });
    else this.bus.emit({ type: 'step', scope: 'hosts', message: `nothing left running on the hosts: ${JSON.stringify(report)}` });
  }

  logs(): Record<string, string> {
    return Object.fromEntries(ROLES.filter((r) => this.ins.raw[r]).map((r) => [`${r}.facts.txt`, join(this.logDir, `${r}.facts.txt`)]));
  }
}

/** The provider `reproduce --testbed hosts.yaml` uses: only the llvm stage (the XDP probe) is built locally. */
export const hostsProvider: TestbedProvider = {
  kind: 'hosts',
  targets: ['llvm'],
  // QEMU, mmdebstrap, the VMs' RAM and the kernel's disk are not needed here: only a clang for the probe.
  doctor: ['clang'],
  async accel() {
    return { accel: 'native', why: "the user's own machines over SSH: no emulation" };
  },
  async up(ctx) {
    const file = ctx.testbedFile;
    if (!file) throw new LabError('the hosts testbed needs its file: --testbed hosts.yaml', ExitCode.usage);
    return SshTestbed.up(loadHostsConfig(file), { probeObject: ctx.artifacts.probeObject, bus: ctx.bus, logDir: ctx.dir });
  },
};

/** What the hosts reaper needs to stop a killed run's processes: written by up(), removed by down(). */
export interface HostsReaperMarker {
  hostsFile: string;
  ledger: string;
  serverIf: string;
}

/**
 * Start the detached reaper (hosts/reaper.ts) for a run on the hosts: when this lab process is gone (even
 * after SIGKILL) while `marker` still exists, it stops the ledger's processes on both hosts and detaches XDP
 * from the server's link NIC, over the same OpenSSH setup. down() removes the marker, and the reaper leaves.
 */
export function startHostsReaper(labPid: number, marker: string, m: HostsReaperMarker): void {
  writeFileSync(marker, `${JSON.stringify(m, null, 2)}\n`);
  // Recorded in the run's directory as it starts: a resume waits while it tears down (core/reaping.ts).
  startReaperProcess('hosts/reaper', [String(labPid), marker], {
    dir: dirname(marker),
    labPid,
    what: `the processes the cells started on the hosts (ledger ${m.ledger}) and XDP on the server's ${m.serverIf}`,
    log: join(dirname(marker), 'hosts-reaper.log'),
  });
}
