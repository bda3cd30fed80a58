import { mkdtempSync, existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Profile, HeapProgram } from '../core/config.js';
import { KFLEX_GUEST_DIR } from '../core/guest.js';
import type { CheckLevel } from '../core/doctor.js';
import { checkNativeXdp, type XdpCheckResult } from '../core/xdp-check.js';
import { heapUnfit } from '../experiments/requirements.js';
import { heapVmMemoryMb } from '../experiments/heaps.js';
import type { HostsConfig, HostSpec, Role } from './config.js';
import { OpenSshHost, targetOf } from './ssh.js';
import { gatherFacts, clockOffset, parseRouteGet, parseIpAddr, type HostFacts, type IfAddr } from './facts.js';
import {
  sameMachineRefusal,
  sshInterfaceRefusal,
  sshInterfaces,
  linkInterfaceRefusal,
  linkAddress,
  linkByMac,
  clientRouteRefusal,
  foreignXdpRefusal,
  rootRefusal,
} from './safety.js';
import { installPlan, installLine, NOT_PACKAGED } from './packages.js';

export const ROLES: Role[] = ['server', 'client'];

/** The two machines of a hosts.yaml, reached with the user's OpenSSH, sharing one connection each. */
export class HostPair {
  private constructor(
    readonly cfg: HostsConfig,
    readonly server: OpenSshHost,
    readonly client: OpenSshHost,
    private readonly controlDir: string,
  ) {}

  static open(cfg: HostsConfig): HostPair {
    // A short directory of its own: ssh appends 17 characters to the ControlPath while it sets a master up.
    const controlDir = mkdtempSync(join(tmpdir(), 'kflex-ssh-'));
    const mk = (role: Role) => new OpenSshHost(targetOf(role, cfg[role], cfg.sshConfig, join(controlDir, '%C')), cfg[role].sudo);
    return new HostPair(cfg, mk('server'), mk('client'), controlDir);
  }

  host(role: Role): OpenSshHost {
    return role === 'server' ? this.server : this.client;
  }

  async close(): Promise<void> {
    await Promise.all([this.server.closeMaster(), this.client.closeMaster()]);
    await rm(this.controlDir, { recursive: true, force: true });
  }
}

/** Facts of both hosts and what they imply: the link addresses to use, and every reason to refuse. */
export interface Inspection {
  facts: Partial<Record<Role, HostFacts>>;
  raw: Partial<Record<Role, string>>;
  /** Why a host could not be reached at all. */
  unreachable: Partial<Record<Role, string>>;
  /** uid that commands run as (after sudo, if configured). */
  uid: Partial<Record<Role, number>>;
  serverIp?: string;
  clientIp?: string;
  clientRouteDev?: string;
  /** Reasons the lab must not run experiments (or attach XDP) on this pair. */
  refusals: Array<{ name: string; host: Role | 'both'; why: string }>;
}

/** Read both hosts and apply every refusal; changes nothing on them. */
export async function inspectHosts(pair: HostPair): Promise<Inspection> {
  const cfg = pair.cfg;
  const ins: Inspection = { facts: {}, raw: {}, unreachable: {}, uid: {}, refusals: [] };
  const refuse = (name: string, host: Role | 'both', why: string | undefined) => why && ins.refusals.push({ name, host, why });
  await Promise.all(
    ROLES.map(async (role) => {
      const h = pair.host(role);
      let macRefusal: string | undefined;
      try {
        const byMac = await resolveLinkInterface(h, role, cfg[role]);
        macRefusal = byMac.refusal;
        const g = await gatherFacts(h.asLoginUser(), { role, destination: cfg[role].destination, linkIf: byMac.ifname });
        ins.facts[role] = g.facts;
        ins.raw[role] = g.raw;
      } catch (e) {
        ins.unreachable[role] = (e as Error).message
          .split('\n')
          .filter((l) => l.trim())
          .slice(-3)
          .join(' / ');
        refuse('ssh', role, `cannot run commands on the ${role} (ssh ${cfg[role].destination}): ${ins.unreachable[role]}`);
        return;
      }
      const f = ins.facts[role]!;
      if (cfg[role].sudo) {
        const r = await h.exec(['id', '-u'], { allowFailure: true, timeoutMs: 30_000 });
        ins.uid[role] = r.code === 0 ? Number(r.stdout.trim()) : undefined;
        refuse('root', role, rootRefusal(role, f.uid, true, ins.uid[role], r.stderr));
      } else {
        ins.uid[role] = f.uid;
        refuse('root', role, rootRefusal(role, f.uid, false, undefined));
      }
      const missing = macRefusal ?? linkInterfaceRefusal(f);
      refuse('link nic', role, missing);
      if (missing) return;
      const addr = linkAddress(f, cfg[role].link.address);
      refuse('link address', role, addr.refusal);
      if (role === 'server') ins.serverIp = addr.address;
      else ins.clientIp = addr.address;
    }),
  );
  const { server: s, client: c } = ins.facts;
  if (s && c) refuse('same machine', 'both', sameMachineRefusal(s, c));
  // XDP goes on the server's link NIC only: that is the one that must not carry the session.
  if (s && !ins.refusals.some((r) => r.name === 'link nic' && r.host === 'server')) {
    refuse('ssh interface', 'server', sshInterfaceRefusal(s));
    refuse('xdp attached', 'server', foreignXdpRefusal(s));
  }
  if (c && ins.serverIp && !ins.refusals.some((r) => r.name === 'link nic' && r.host === 'client')) {
    const r = await pair.client.asLoginUser().exec(['ip', '-j', 'route', 'get', ins.serverIp], { allowFailure: true, timeoutMs: 30_000 });
    ins.clientRouteDev = parseRouteGet(r.stdout)?.dev;
    refuse('client route', 'client', clientRouteRefusal(c.linkIf, ins.clientRouteDev, ins.serverIp));
  }
  return ins;
}

/**
 * The link NIC's name on the host: `interface:` as configured, or the interface whose MAC is `mac:` (one
 * `ip -j link` as the login user). A MAC that matches nothing keeps a placeholder name and says why.
 */
async function resolveLinkInterface(h: OpenSshHost, role: Role, spec: HostSpec): Promise<{ ifname: string; refusal?: string }> {
  const mac = spec.link.mac;
  if (!mac) return { ifname: spec.link.interface! };
  const r = await h.asLoginUser().exec(['ip', '-j', 'link'], { allowFailure: true, timeoutMs: 30_000 });
  let ifs: IfAddr[] = [];
  try {
    ifs = parseIpAddr(r.stdout);
  } catch {
    return {
      ifname: spec.link.interface ?? `(mac ${mac})`,
      refusal: `${role}.link.mac: cannot list the interfaces on ${spec.destination}: ${r.stderr.trim()}`,
    };
  }
  const m = linkByMac(ifs, { role, destination: spec.destination, mac, configuredIf: spec.link.interface });
  if (m.refusal !== undefined) return { ifname: spec.link.interface ?? `(mac ${mac})`, refusal: m.refusal };
  return { ifname: m.ifname };
}

/** Why native XDP was not verified, from the probe's error (its advice is about virtio-net VMs, so only ip's words are kept). */
export function xdpRefusalOf(e: Error, nic: string | undefined, linkIf: string): string {
  const said = e.message.split('ip said: ')[1]?.trim();
  return said ? `driver ${nic ?? 'unknown'} refused driver-mode XDP on ${linkIf}: ${said}` : e.message.split('\n')[0]!;
}

export interface HostCheck {
  host: Role | 'both';
  name: string;
  level: CheckLevel;
  detail: string;
  fix?: string;
}

export interface HostsCheckResult {
  file: string;
  checks: HostCheck[];
  /** One install line per host, for what is missing. */
  install: Partial<Record<Role, string>>;
  facts: Partial<Record<Role, HostFacts>>;
  link: { serverIp?: string; clientIp?: string };
  xdp?: XdpCheckResult;
  xdpRefused?: string;
  clockOffsetMs?: number;
  ok: boolean;
}

/** The heap sizes (GiB) the profile's enabled KFlex variants allocate, largest first. */
export function profileHeaps(
  profile: Profile,
  experiments: Array<{ id: string; variants: Array<{ id: string; heapGiB?: number; heap?: HeapProgram }> }>,
): number[] {
  const out = new Set<number>();
  for (const e of experiments) {
    const s = profile.experiments[e.id];
    if (!s?.enabled) continue;
    // The profile's kflex.heap_gib decides (a scaled profile allocates less than the artifact's programs).
    for (const v of e.variants) {
      const gib = v.heap ? profile.kflex.heap_gib[v.heap] : v.heapGiB;
      if (gib && s.variants.includes(v.id)) out.add(gib);
    }
  }
  return [...out].sort((a, b) => b - a);
}

/** The server's own checks: KFlex kernel, 5-level paging, the heaps against its RAM, ffkx. */
function serverChecks(f: HostFacts, heaps: number[]): HostCheck[] {
  const role = 'server' as const;
  const checks: HostCheck[] = [];
  const add = (c: HostCheck) => checks.push(c);
  const o = { heaps };
  const btf = f.btf;
  if (btf.kind === 'kflex')
    add({ host: role, name: 'kflex kernel', level: 'ok', detail: `BPF_MAP_TYPE_HEAP is in the kernel's BTF (${btf.hits} hits): a KFlex kernel` });
  else
    add({
      host: role,
      name: 'kflex kernel',
      level: 'warn',
      detail:
        btf.kind === 'no-btf'
          ? `kernel ${f.kernel} has no BTF (/sys/kernel/btf/vmlinux): cannot probe for KFlex; KFlex cells will be skipped`
          : btf.kind === 'no-bpftool'
            ? 'no bpftool to read the kernel BTF with: KFlex cannot be probed (install bpftool)'
            : `kernel ${f.kernel} is not a KFlex kernel (BPF_MAP_TYPE_HEAP is not in its BTF): KFlex cells will be skipped, user-space cells run`,
      fix:
        'to run the KFlex cells, boot the KFlex kernel on this host: ' +
        'kflex-lab build kernel --deb --profile paper builds it ' +
        '(KFlex-linux at the pinned commit, verified config) as Debian packages and prints the steps: ' +
        'dpkg -i, update-grub, reboot into it, then hosts check again. The lab never reboots a machine by itself.',
    });
  add({
    host: role,
    name: 'la57',
    level: 'ok',
    detail: f.cpu.la57
      ? '5-level paging active (la57 in /proc/cpuinfo)'
      : '4-level paging (no la57 in /proc/cpuinfo): only heaps of 256 GiB and more can be placed ' +
        '(64 and 128 GiB and every scaled heap need 5-level paging)',
  });
  // The runner's own rule decides; the words are shorter than its (which speak of VM settings).
  const unfit = o.heaps.filter((g) => heapUnfit(g, { serverMemoryMb: f.memory.totalMb, la57: f.cpu.la57 }));
  const why = (g: number) =>
    f.memory.totalMb < heapVmMemoryMb(g)
      ? `${g} GiB (needs ~${Math.ceil(heapVmMemoryMb(g) / 1024)} GiB of RAM)`
      : `${g} GiB (cannot be placed without 5-level paging)`;
  add(
    unfit.length
      ? {
          host: role,
          name: 'heap ram',
          level: 'warn',
          detail:
            `${(f.memory.totalMb / 1024).toFixed(1)} GiB of RAM${f.cpu.la57 ? '' : ', 4-level paging'}` +
            `: the KFlex heaps ${unfit.map(why).join(', ')} do not fit; those KFlex cells will be skipped`,
        }
      : {
          host: role,
          name: 'heap ram',
          level: 'ok',
          detail: o.heaps.length
            ? `${(f.memory.totalMb / 1024).toFixed(1)} GiB holds the profile's heaps (${o.heaps.join(', ')} GiB)`
            : 'the profile runs no KFlex heap',
        },
  );
  const files = Object.entries(f.kflexFiles)
    .filter(([, p]) => !p)
    .map(([n]) => n);
  add(
    files.length
      ? {
          host: role,
          name: 'ffkx',
          level: 'warn',
          detail: `${files.join(', ')} not in ${KFLEX_GUEST_DIR}: KFlex cells will be skipped`,
          fix: 'kflex-lab hosts prepare --testbed FILE (copies the kflex stage build when the host runs the guest suite, else says what to do)',
        }
      : { host: role, name: 'ffkx', level: 'ok', detail: `ffkx and ffkx-bench in ${KFLEX_GUEST_DIR}` },
  );

  return checks;
}

/** The binaries the harness and the experiments run: missing ones, and the line that installs them. */
function binaryCheck(role: Role, f: HostFacts): { check: HostCheck; line?: string } {
  const missing = Object.entries(f.binaries)
    .filter(([, p]) => !p)
    .map(([b]) => b);
  const plan = installPlan(missing, f.os, f.kernel);
  // A line to paste as the login user: sudo unless that user is root.
  const line = installLine(plan, f.uid === 0, f.os);
  const soft = new Set(['memtier_benchmark', 'ethtool']);
  const hard = missing.filter((b) => !soft.has(b));
  return {
    line,
    check: missing.length
      ? {
          host: role,
          name: 'binaries',
          level: hard.length ? 'fail' : 'warn',
          detail: `missing: ${missing.join(', ')}${missing
            .filter((b) => NOT_PACKAGED[b])
            .map((b) => `; ${b}: ${NOT_PACKAGED[b]}`)
            .join('')}`,
          fix: line,
        }
      : { host: role, name: 'binaries', level: 'ok', detail: `all there: ${Object.keys(f.binaries).join(' ')}` },
  };
}

/** What each host needs and lacks, as checks (pure: from the inspection, so it is tested on captured facts). */
export function assess(
  ins: Inspection,
  o: { heaps: number[]; profileCpus: Record<Role, number>; clockOffsetMs?: number; clockUncertaintyMs?: number },
): { checks: HostCheck[]; install: Partial<Record<Role, string>> } {
  const checks: HostCheck[] = [];
  const add = (c: HostCheck) => checks.push(c);
  const install: Partial<Record<Role, string>> = {};
  for (const r of ins.refusals) add({ host: r.host, name: r.name, level: 'fail', detail: r.why });
  for (const role of ROLES) {
    const f = ins.facts[role];
    if (!f) continue;
    add({
      host: role,
      name: 'kernel',
      level: 'ok',
      detail: `${f.hostname}: Linux ${f.kernel} (${f.os.pretty}), ${f.cpus} CPUs (${f.cpu.model}), ${(f.memory.totalMb / 1024).toFixed(1)} GiB RAM`,
    });
    if (role === 'server') checks.push(...serverChecks(f, o.heaps));
    const want = o.profileCpus[role];
    add({
      host: role,
      name: 'cpus',
      level: f.cpus >= want ? 'ok' : 'warn',
      detail: `${f.cpus} CPUs${f.cpus >= want ? '' : `; the profile gives its ${role} VM ${want}: fewer threads than the profile's loads assume`}`,
    });
    if (!ins.refusals.some((r) => r.name === 'link nic' && r.host === role)) {
      const nic = f.nic;
      add({
        host: role,
        name: 'link nic',
        level: nic.driver ? 'ok' : 'warn',
        detail:
          `${f.linkIf}: driver ${nic.driver ?? 'unknown'}${nic.version ? ` ${nic.version}` : ''}${nic.firmware ? `, firmware ${nic.firmware}` : ''}` +
          `${nic.busInfo ? `, bus ${nic.busInfo}` : ''}; address ${role === 'server' ? (ins.serverIp ?? '?') : (ins.clientIp ?? '?')}` +
          `; SSH arrives on ${sshInterfaces(f).join(', ') || '?'}`,
      });
    }
    // XDP never goes on the client's NIC, but a link that also carries SSH measures the session too.
    if (role === 'client' && sshInterfaces(f).includes(f.linkIf))
      add({
        host: role,
        name: 'ssh interface',
        level: 'warn',
        detail: `the client's ${f.linkIf} also carries this SSH session: the experiments share the link with it`,
        fix: 'reach the client through another interface (a management network or ProxyJump)',
      });
    const bins = binaryCheck(role, f);
    add(bins.check);
    if (bins.line) install[role] = bins.line;
    if (f.ntpSynchronized === false)
      add({ host: role, name: 'ntp', level: 'warn', detail: 'the clock is not NTP-synchronized (timedatectl): logs of the two hosts may not line up' });
  }
  if (o.clockOffsetMs !== undefined) {
    const off = Math.abs(o.clockOffsetMs);
    add({
      host: 'both',
      name: 'clock',
      level: off > 100 + (o.clockUncertaintyMs ?? 0) ? 'warn' : 'ok',
      detail: `client - server clock offset ${o.clockOffsetMs.toFixed(1)} ms (± ${(o.clockUncertaintyMs ?? 0).toFixed(1)} ms, measured over SSH)`,
      fix: off > 100 ? 'run NTP (chrony or systemd-timesyncd) on both hosts' : undefined,
    });
  }
  return { checks, install };
}

/**
 * `hosts check`: read-only, except the native-XDP probe (attached in driver mode to the server's link NIC,
 * counted, detached), which runs only when no refusal stands.
 */
export async function checkHosts(
  cfg: HostsConfig,
  o: { probeObject: string; profile: Profile; heaps: number[]; log?: (m: string) => void },
): Promise<HostsCheckResult> {
  const pair = HostPair.open(cfg);
  try {
    const ins = await inspectHosts(pair);
    let clock: { offsetMs: number; uncertaintyMs: number } | undefined;
    if (ins.facts.server && ins.facts.client) {
      const [s, c] = await Promise.all([clockOffset(pair.server.asLoginUser()), clockOffset(pair.client.asLoginUser())]);
      clock = { offsetMs: c.offsetMs - s.offsetMs, uncertaintyMs: c.uncertaintyMs + s.uncertaintyMs };
    }
    const a = assess(ins, {
      heaps: o.heaps,
      profileCpus: { server: o.profile.vms.server.cpus, client: o.profile.vms.client.cpus },
      clockOffsetMs: clock?.offsetMs,
      clockUncertaintyMs: clock?.uncertaintyMs,
    });
    let xdp: XdpCheckResult | undefined;
    let xdpRefused: string | undefined;
    const s = ins.facts.server;
    if (ins.refusals.length) xdpRefused = `not tried: ${ins.refusals.map((r) => r.name).join(', ')} refused above`;
    else if (!s?.binaries.bpftool) xdpRefused = 'not tried: no bpftool on the server';
    else if (!existsSync(o.probeObject)) xdpRefused = `not tried: no probe object ${o.probeObject}`;
    else {
      o.log?.(`attaching the lab's XDP probe in driver mode to the server's ${s.linkIf} (detached right after)`);
      try {
        xdp = await checkNativeXdp({ server: pair.server, client: pair.client, serverIf: s.linkIf, serverIp: ins.serverIp! }, o.probeObject);
      } catch (e) {
        xdpRefused = xdpRefusalOf(e as Error, s.nic.driver, s.linkIf);
      }
    }
    if (xdp) {
      const good = xdp.mode === 'driver' && xdp.counted === xdp.sent;
      a.checks.push({
        host: 'server',
        name: 'native xdp',
        level: good ? 'ok' : 'warn',
        detail:
          `${s!.linkIf} (${s!.nic.driver ?? '?'}): mode ${xdp.mode}, sent ${xdp.sent} UDP datagrams to port ${xdp.port}, ` +
          `the probe counted ${xdp.counted}; detached${good ? '' : ': the XDP cells will be skipped'}`,
      });
    } else
      a.checks.push({
        host: 'server',
        name: 'native xdp',
        level: ins.refusals.length ? 'fail' : 'warn',
        detail: `${xdpRefused}; the memcache KFlex cells (XDP) will be skipped`,
      });
    return {
      file: cfg.file,
      checks: a.checks,
      install: a.install,
      facts: ins.facts,
      link: { serverIp: ins.serverIp, clientIp: ins.clientIp },
      xdp,
      xdpRefused,
      clockOffsetMs: clock?.offsetMs,
      ok: !a.checks.some((c) => c.level === 'fail'),
    };
  } finally {
    await pair.close();
  }
}
