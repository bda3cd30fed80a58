import { jsonLines, randInt } from '../grading.js';
import type { Exercise, GradeContext, GuestPaths, LabTest } from '../types.js';

export const DROP_PORT = 7777;
export const KEEP_PORT = 7778;

/** Pure: what the client sent, what the server's sockets received, and the pings it answered, as tests. */
export function judgeUdpDrop(sent: { drop: number; keep: number; pings: number }, received: Record<string, number>, echoReplies: number): LabTest[] {
  const got = (p: number) => received[String(p)] ?? 0;
  return [
    {
      name: `datagrams to port ${DROP_PORT} the server's socket received (dropped by XDP)`,
      pass: got(DROP_PORT) === 0,
      expected: `0 of ${sent.drop}`,
      seen: String(got(DROP_PORT)),
    },
    {
      name: `datagrams to port ${KEEP_PORT} the server's socket received (passed)`,
      pass: got(KEEP_PORT) === sent.keep,
      expected: String(sent.keep),
      seen: String(got(KEEP_PORT)),
    },
    { name: 'echo replies the client received (the rest passes)', pass: echoReplies === sent.pings, expected: String(sent.pings), seen: String(echoReplies) },
  ];
}

const SINK = (p: GuestPaths) => [`${p.scratch}/sink.pid`, `${p.scratch}/sink.json`];

/** On the server once the program is attached: a UDP receiver counting what reaches its sockets on both ports. */
export const udpSinkSetup = (p: GuestPaths) => `"$1" udp-sink ${SINK(p).join(' ')} ${DROP_PORT} ${KEEP_PORT}`;

async function grade(ctx: GradeContext): Promise<LabTest[]> {
  const sent = { drop: randInt(ctx.random, 4, 15), keep: randInt(ctx.random, 4, 15), pings: randInt(ctx.random, 3, 8) };
  const ip = ctx.serverIp;
  const r = await ctx.client(
    [ctx.paths.labnet, 'udp-send', ip, String(DROP_PORT), String(sent.drop), '+', 'udp-send', ip, String(KEEP_PORT), String(sent.keep), '+'].concat([
      'ping',
      ip,
      String(sent.pings),
    ]),
    { timeoutS: 60, what: 'the client sending UDP and pings' },
  );
  const c = await ctx.server([ctx.paths.labnet, 'sink-collect', ...SINK(ctx.paths)], { what: "reading the server's UDP receiver" });
  const received = jsonLines<Record<string, number>>(c.stdout)[0] ?? {};
  const echo = jsonLines<{ ping_received?: number }>(r.stdout).find((o) => 'ping_received' in o)?.ping_received ?? 0;
  return judgeUdpDrop(sent, received, echo);
}

export const exercise: Exercise = {
  n: 2,
  slug: 'udp-drop',
  title: 'Drop UDP to one port, pass the rest (XDP_DROP)',
  file: 'prog.bpf.c',
  attach: 'xdp',
  serverSetup: (p) => udpSinkSetup(p),
  grade,
};
