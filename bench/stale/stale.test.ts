import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { lineChart, median, percentile, writeReport } from '../report/report.mjs';
import { EventStream, type ApiEvent } from '../../test/support/api-client.js';
import { clearRules, faultNet, serverSendQueuesEmpty, setServerKeepAliveSysctls } from '../../test/support/netns.js';
import { startServer, type RunningServer } from '../../test/support/server-process.js';
import { SipPeer, type IncomingCall, type PeerCall } from '../../test/support/sip-peer.js';

/*
 * bench/stale (issue 6): K calls ringing at K endpoints, each registered over its own TCP
 * connection; every one of those connections is silently dropped at once (iptables in the
 * endpoints' namespace: all TCP from or to the server's port 5060 — new connections from the
 * server to the endpoints' own ports still pass). With keep-alive sysctls 2/1/2 the server
 * should find each dead after ~4 s, re-open to each Contact, re-send each INVITE, and every
 * call be answered on the new connection. Measured: detection minus the OS bound, re-open +
 * re-send latency (the server's reopenMs, and detection → INVITE again at the endpoint), and
 * the share of calls saved. Writes bench/results/<date>-stale.{json,md,svg}.
 */

const net = faultNet();
const SERVER = { address: net.srvAddr, port: 5060 };
const SYSCTL = { time: 2, intvl: 1, probes: 2 };
const BOUND_MS = (SYSCTL.time + SYSCTL.intvl * SYSCTL.probes) * 1000;
const KS = (process.env.STALE_K ?? '1,100,1000').split(',').map(Number);
const sdp = (owner: string, port: number): string => ['v=0', `o=${owner} 1 1 IN IP4 ${net.epAddr}`, 's=-', `c=IN IP4 ${net.epAddr}`, 't=0 0', `m=audio ${port} RTP/AVP 0`, ''].join('\r\n');

interface Round {
  k: number;
  detectionOverBoundMs: { median: number | null; p99: number | null; max: number | null };
  reopenMs: { median: number | null; p99: number | null };
  inviteAgainAfterDetectionMs: { median: number | null; p99: number | null };
  saved: number;
  savedShare: number;
}

const rounds: Round[] = [];

beforeAll(() => {
  setServerKeepAliveSysctls(net, SYSCTL.time, SYSCTL.intvl, SYSCTL.probes);
});

afterAll(() => {
  clearRules();
  if (rounds.length === 0) return;
  const rows = rounds.map(
    (r) =>
      `| ${r.k} | ${r.detectionOverBoundMs.median} | ${r.detectionOverBoundMs.p99} | ${r.reopenMs.median} | ${r.reopenMs.p99} | ${r.inviteAgainAfterDetectionMs.median} | ${r.inviteAgainAfterDetectionMs.p99} | ${r.saved}/${r.k} (${Math.round(r.savedShare * 100)} %) |`,
  );
  const markdown = [
    `# Stale connections — ${new Date().toISOString().slice(0, 10)}`,
    '',
    `K calls ringing at K endpoints (one TCP connection each), all K connections silently dropped at once; server namespace keep-alive sysctls ${SYSCTL.time}/${SYSCTL.intvl}/${SYSCTL.probes} (OS bound ${BOUND_MS} ms). Node ${process.version}.`,
    '',
    '| K | detection − bound (from the last packet on the connection), median ms | p99 ms | re-open + re-send (server), median ms | p99 ms | detection → INVITE again at the endpoint, median ms | p99 ms | calls saved |',
    '|---|---|---|---|---|---|---|---|',
    ...rows,
    '',
    'Kamailio, for comparison (NOTES.md, same box): with keep-alive 2/1/3 it sees the dead connection to a ringing UAS after ~5.1 s but never re-sends the INVITE; the caller gets 408 when fr_inv_timer expires — 0 % of calls saved.',
    '',
    '{{chart}}',
  ].join('\n');
  const svg = lineChart({
    title: 'Re-open + re-send latency after detection',
    xLabel: 'K (calls whose connections died at once)',
    yLabel: 'ms',
    series: [
      { name: 'median', points: rounds.map((r) => [r.k, r.reopenMs.median ?? 0]) },
      { name: 'p99', points: rounds.map((r) => [r.k, r.reopenMs.p99 ?? 0]), dashed: true },
    ],
  });
  const paths = writeReport('stale', { data: { sysctls: SYSCTL, boundMs: BOUND_MS, rounds }, markdown, svg });
  console.log(markdown.replace('{{chart}}', ''));
  console.log(`written ${paths.json}, ${paths.md}`);
});

it.each(KS)('K = %i ringing calls whose connections are dropped at once', async (k) => {
  const dns: Record<string, unknown> = { '1000': { type: 'extension', contact: '*' } };
  for (let i = 0; i < k; i++) dns[String(20000 + i)] = { type: 'extension', contact: '*' };
  let server: RunningServer | undefined;
  let events: EventStream | undefined;
  const peers: SipPeer[] = [];
  try {
    server = await startServer({ netns: { name: net.srv, address: net.srvAddr }, tserver: { 'sip-enable-tcp-keep-alive': true, 'sip-tcp-connect-timeout': 3000, 'sip-max-connections': 100_000 }, dns, logLevel: process.env.STALE_LOG ?? 'warn' });
    events = await EventStream.open(server.api, server.token);
    const caller = await SipPeer.start({ transport: 'UDP', user: '1000', address: net.epAddr, waitMs: 30_000 });
    peers.push(caller);
    const callees: SipPeer[] = [];
    for (let i = 0; i < k; i++) {
      const p = await SipPeer.start({ transport: 'TCP', user: String(20000 + i), address: net.epAddr, waitMs: 30_000 });
      peers.push(p);
      callees.push(p);
    }
    await Promise.all(callees.map(async (p) => expect((await p.register(SERVER)).status).toBe(200)));
    await caller.register(SERVER);

    // Set up in batches of 100: a burst of 1000 INVITEs over one UDP socket loses datagrams.
    const calls: PeerCall[] = [];
    const incoming: IncomingCall[] = [];
    for (let from = 0; from < k; from += 100) {
      const batch = callees.slice(from, from + 100);
      const placed = batch.map((p, i) => caller.call(SERVER, p.user, { sdp: sdp('caller', 40000 + from + i) }));
      const arrived = await Promise.all(batch.map((p) => p.nextIncomingCall()));
      for (const c of arrived) c.ring();
      await Promise.all(placed.map((c) => c.waitStatus(180)));
      calls.push(...placed);
      incoming.push(...arrived);
    }
    // Keep-alive probes only start on connections with nothing unacknowledged (the 180s' ACKs).
    await serverSendQueuesEmpty(net, callees.map((p) => `${net.epAddr}:${p.flows().find((f) => f.direction === 'opened')?.localPort ?? 0}`));
    const mark = events.events.length;

    const dropped = Date.now();
    execFileSync('iptables', ['-I', 'INPUT', '-p', 'tcp', '-s', net.srvAddr, '--sport', '5060', '-j', 'DROP']);
    execFileSync('iptables', ['-I', 'OUTPUT', '-p', 'tcp', '-d', net.srvAddr, '--dport', '5060', '-j', 'DROP']);

    // Every endpoint gets its INVITE again on a new connection, and answers it.
    const againAt = await Promise.all(
      callees.map((p, i) =>
        p.waiter.until('the re-sent INVITE', 60_000, () => {
          const branch = incoming[i]?.invite ? (incoming[i]?.invite.headers.find((h) => h.name.toLowerCase() === 'via')?.value ?? '') : '';
          const copies = p.messages.filter((m) => m.dir === 'in' && m.message.kind === 'request' && m.message.method === 'INVITE' && (m.message.headers.find((h) => h.name.toLowerCase() === 'via')?.value ?? '') === branch);
          return copies.length >= 2 ? copies[1]?.at : undefined;
        }),
      ),
    );
    const acks = incoming.map((c) => c.answer(sdp('callee', 50000)).catch(() => undefined));
    const finals = await Promise.all(calls.map((c) => c.final(30_000).catch(() => undefined)));
    await Promise.all(acks);
    const saved = finals.filter((f) => f?.status === 200).length;

    const stale = events.events.slice(mark).filter((e: ApiEvent) => e.event === 'ConnectionStale' && Array.isArray(e.active) && e.active.length > 0);
    const reopened = events.events.slice(mark).filter((e: ApiEvent) => e.event === 'ConnectionReopened');
    const staleAt = new Map(stale.map((e) => [String(e.remote), Date.parse(String(e.time))]));
    // The keep-alive idle time runs from the last packet on the connection: the endpoint's
    // last message on it before the drop (its 180), not the drop itself.
    const detection = callees.flatMap((p) => {
      const flow = p.flows().find((f) => f.direction === 'opened');
      const detectedAt = flow ? staleAt.get(`${net.epAddr}:${flow.localPort}`) : undefined;
      const last = Math.max(...p.messages.filter((m) => m.remote.flowId === flow?.id && m.at <= dropped).map((m) => m.at));
      return detectedAt !== undefined && Number.isFinite(last) ? [detectedAt - last - BOUND_MS] : [];
    });
    const reopenMs = reopened.map((e) => Number(e.reopenMs));
    const againAfter = callees.map((p, i) => {
      const flow = p.flows().find((f) => f.direction === 'opened');
      const detectedAt = flow ? staleAt.get(`${net.epAddr}:${flow.localPort}`) : undefined;
      const at = againAt[i];
      return detectedAt !== undefined && at !== undefined ? at - detectedAt : NaN;
    }).filter((v) => Number.isFinite(v));
    const round: Round = {
      k,
      detectionOverBoundMs: { median: median(detection), p99: percentile(detection, 99), max: detection.length ? Math.max(...detection) : null },
      reopenMs: { median: median(reopenMs), p99: percentile(reopenMs, 99) },
      inviteAgainAfterDetectionMs: { median: median(againAfter), p99: percentile(againAfter, 99) },
      saved,
      savedShare: saved / k,
    };
    rounds.push(round);
    console.log(JSON.stringify(round));
    expect(saved).toBe(k);
    await Promise.all(calls.map((c) => c.bye().catch(() => undefined)));
  } finally {
    clearRules();
    for (const p of peers) await p.close();
    events?.close();
    await server?.stop();
  }
});
