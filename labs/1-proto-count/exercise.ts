import { compareCounts, dumpMap, entryTotal, jsonLines, leUint, randInt } from '../grading.js';
import type { Exercise, GradeContext, LabTest } from '../types.js';

const PROTOS: Record<string, string> = { '1': 'ICMP (1)', '6': 'TCP (6)', '17': 'UDP (17)' };

/** Pure: what the client sent and saw, and the map the program filled, as tests. */
export function judgeProtoCount(
  sent: { icmp: number; tcp: number; udp: number },
  client: { echoReplies: number; tcpRefused: number },
  counted: Map<string, number>,
): LabTest[] {
  const expected = new Map([
    ['1', sent.icmp],
    ['6', sent.tcp],
    ['17', sent.udp],
  ]);
  return [
    ...compareCounts('packets counted for', expected, counted, (k) => PROTOS[k] ?? `protocol ${k}`),
    {
      name: 'echo replies the client received (the program passes ICMP)',
      pass: client.echoReplies === sent.icmp,
      expected: String(sent.icmp),
      seen: String(client.echoReplies),
    },
    {
      name: 'TCP attempts the server answered (the program passes TCP)',
      pass: client.tcpRefused === sent.tcp,
      expected: String(sent.tcp),
      seen: String(client.tcpRefused),
    },
  ];
}

async function grade(ctx: GradeContext): Promise<LabTest[]> {
  // Different numbers at every check: a program that writes the expected counters cannot know them.
  const sent = { icmp: randInt(ctx.random, 4, 12), tcp: randInt(ctx.random, 3, 9), udp: randInt(ctx.random, 5, 20) };
  // TCP and UDP to the closed port 9 first; the pings last, so their replies prove the server saw the rest.
  const ip = ctx.serverIp;
  const r = await ctx.client(
    [ctx.paths.labnet, 'tcp-syn', ip, '9', String(sent.tcp), '+', 'udp-send', ip, '9', String(sent.udp), '+', 'ping', ip, String(sent.icmp)],
    { timeoutS: 60, what: 'the client sending ICMP, TCP and UDP' },
  );
  const out = jsonLines<{ refused?: number; ping_received?: number }>(r.stdout);
  const dump = await dumpMap(ctx, 'proto_count');
  const counted = new Map(dump.entries.map((e) => [String(leUint(e.key)), Number(entryTotal(e))]));
  const client = { echoReplies: out.find((o) => 'ping_received' in o)?.ping_received ?? 0, tcpRefused: out.find((o) => 'refused' in o)?.refused ?? 0 };
  return judgeProtoCount(sent, client, counted);
}

export const exercise: Exercise = {
  n: 1,
  slug: 'proto-count',
  title: 'Count packets per protocol in a map (XDP, array map)',
  file: 'prog.bpf.c',
  attach: 'xdp',
  grade,
};
