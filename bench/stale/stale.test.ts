import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { lineChart, median, percentile, writeReport } from '../report/report.mjs';
import { EventStream, type ApiEvent } from '../../test/support/api-client.js';
import { clearRules, dropServerPort, faultNet, serverSendQueuesEmpty, setServerKeepAliveSysctls } from '../../test/support/netns.js';
import { startServer, type RunningServer } from '../../test/support/server-process.js';
import { branchOf, SipPeer, type IncomingCall, type PeerCall } from '../../test/support/sip-peer.js';
import { startKamailio, stopAllKamailio, type RunningKamailio } from './kamailio.js';

/*
 * bench/stale (issue 6): K calls ringing at K endpoints, each registered over its own TCP
 * connection; every one of those connections is silently dropped at once (iptables in the
 * endpoints' namespace: all TCP from or to the server's port 5060 — new connections from the
 * server to the endpoints' own ports still pass). With keep-alive sysctls 2/1/2 the server
 * should find each dead after ~4 s, re-open to each Contact, re-send each INVITE, and every
 * call be answered on the new connection. Measured: detection minus the OS bound, re-open +
 * re-send latency (the server's reopenMs, and detection → INVITE again at the endpoint), and
 * the share of calls saved.
 *
 * Then the same scenario through Kamailio (bench/kamailio/stale.cfg, in the server's
 * namespace on the same address and port, keep-alive 2/1/2 on its connections): per call
 * whether the endpoint saw the INVITE again, whether the call was saved, Kamailio's detection
 * (its "error reading: Connection timed out" log line for the connection), and what the caller
 * finally got, after how long. Writes bench/results/<date>-stale.{json,md,svg}.
 *
 * Env: STALE_K (default 1,100,1000), STALE_TARGETS (default sip-server,kamailio),
 * STALE_FR_INV_MS (Kamailio's fr_inv_timer, default 30000: see bench/kamailio/stale.cfg),
 * STALE_LOG_KAMAILIO=1|all (print Kamailio's log from the drop on, or all of it).
 */

const net = faultNet();
const SERVER = { address: net.srvAddr, port: 5060 };
const SYSCTL = { time: 2, intvl: 1, probes: 2 };
const BOUND_MS = (SYSCTL.time + SYSCTL.intvl * SYSCTL.probes) * 1000;
const KS = (process.env.STALE_K ?? '1,100,1000').split(',').map(Number);
const TARGETS = (process.env.STALE_TARGETS ?? 'sip-server,kamailio').split(',');
const FR_INV_MS = Number(process.env.STALE_FR_INV_MS ?? 30_000);
const sdp = (owner: string, port: number): string => ['v=0', `o=${owner} 1 1 IN IP4 ${net.epAddr}`, 's=-', `c=IN IP4 ${net.epAddr}`, 't=0 0', `m=audio ${port} RTP/AVP 0`, ''].join('\r\n');

type Stat = number | null;

interface Round {
  k: number;
  detectionOverBoundMs: { median: Stat; p99: Stat; max: Stat };
  reopenMs: { median: Stat; p99: Stat };
  inviteAgainAfterDetectionMs: { median: Stat; p99: Stat };
  saved: number;
  savedShare: number;
}

interface KamailioRound {
  k: number;
  frInvTimerMs: number;
  /** INVITEs Kamailio sent down the endpoint's own registration connection (should be K). */
  inviteOnRegistrationFlow: number;
  /** Connections whose death Kamailio logged, and when (from the last packet, minus the OS bound). */
  detected: number;
  detectionOverBoundMs: { median: Stat; p99: Stat; max: Stat };
  /** Endpoints that saw their INVITE again (any connection), and after the drop. */
  inviteAgain: number;
  inviteAgainAfterDropMs: { median: Stat; p99: Stat };
  saved: number;
  savedShare: number;
  /** The caller's final responses by status ("none": none before the wait ended). */
  callerFinal: Record<string, number>;
  callerFinalAfterDropMs: { median: Stat; p99: Stat; max: Stat };
  callerFinalAfter180Ms: { median: Stat; p99: Stat };
  /** Kamailio's connects to an endpoint's old source address (for the CANCEL after the 408) that were refused. */
  cancelConnectsRefused: number;
  /** Endpoints Kamailio opened a connection to (at their Contact) after the drop. */
  contactConnections: number;
}

const rounds: Round[] = [];
const kamailioRounds: KamailioRound[] = [];

const stats = (xs: number[]): { median: Stat; p99: Stat; max: Stat } => ({ median: median(xs), p99: percentile(xs, 99), max: xs.length ? Math.max(...xs) : null });
const header = (m: { headers: { name: string; value: string }[] }, name: string): string => m.headers.find((h) => h.name.toLowerCase() === name)?.value ?? '';

beforeAll(() => {
  setServerKeepAliveSysctls(net, SYSCTL.time, SYSCTL.intvl, SYSCTL.probes);
});

afterAll(async () => {
  clearRules();
  await stopAllKamailio();
  if (rounds.length === 0 && kamailioRounds.length === 0) return;
  const rows = rounds.map(
    (r) =>
      `| ${r.k} | ${r.detectionOverBoundMs.median} | ${r.detectionOverBoundMs.p99} | ${r.reopenMs.median} | ${r.reopenMs.p99} | ${r.inviteAgainAfterDetectionMs.median} | ${r.inviteAgainAfterDetectionMs.p99} | ${r.saved}/${r.k} (${Math.round(r.savedShare * 100)} %) |`,
  );
  const finals = (r: KamailioRound): string =>
    Object.entries(r.callerFinal)
      .map(([status, n]) => `${n}× ${status}`)
      .join(', ');
  const kamRows = kamailioRounds.map(
    (r) =>
      `| ${r.k} | ${r.detected}/${r.k} | ${r.detectionOverBoundMs.median} | ${r.detectionOverBoundMs.p99} | ${r.inviteAgain}/${r.k} | ${r.saved}/${r.k} (${Math.round(r.savedShare * 100)} %) | ${finals(r)} | ${r.callerFinalAfterDropMs.median} | ${r.callerFinalAfterDropMs.max} | ${r.callerFinalAfter180Ms.median} |`,
  );
  const markdown = [
    `# Stale connections — ${new Date().toISOString().slice(0, 10)}`,
    '',
    `K calls ringing at K endpoints (one TCP connection each), all K connections silently dropped at once; server namespace keep-alive sysctls ${SYSCTL.time}/${SYSCTL.intvl}/${SYSCTL.probes} (OS bound ${BOUND_MS} ms). Node ${process.version}.`,
    '',
    '## sip-server',
    '',
    '| K | detection − bound (from the last packet on the connection), median ms | p99 ms | re-open + re-send (server), median ms | p99 ms | detection → INVITE again at the endpoint, median ms | p99 ms | calls saved |',
    '|---|---|---|---|---|---|---|---|',
    ...rows,
    '',
    '## Kamailio, same scenario',
    '',
    `Kamailio 5.6 (bench/kamailio/stale.cfg: tm proxy, in-memory registrar, the INVITE sent down the endpoint's registration connection) in the server's namespace on the same address and port, keep-alive ${SYSCTL.time}/${SYSCTL.intvl}/${SYSCTL.probes} on its connections, fr_inv_timer ${FR_INV_MS / 1000} s (default 120 s; over TCP a value below fr_timer, 30 s, only takes effect at fr_timer, as no retransmission timer wakes the branch earlier). Detection: the time Kamailio's "error reading: Connection timed out" line for the connection reached the bench (stderr, no own timestamps), minus the last packet on the connection, minus the bound. The endpoints would answer an INVITE that came again, as in the sip-server rounds.`,
    '',
    '| K | connections seen dead | detection − bound, median ms | p99 ms | endpoints that saw the INVITE again | calls saved | caller got | drop → caller\'s final, median ms | max ms | 180 → caller\'s final, median ms |',
    '|---|---|---|---|---|---|---|---|---|---|',
    ...kamRows,
    '',
    `After the 408 Kamailio sends a CANCEL towards the endpoint's old source address (the registration's \`received\`), on a new connection that the endpoint's host refuses (${kamailioRounds.map((r) => `K = ${r.k}: ${r.cancelConnectsRefused} refused connects`).join(', ')}); it opened no connection to any endpoint's Contact (${kamailioRounds.map((r) => `K = ${r.k}: ${r.contactConnections}`).join(', ')}).`,
    '',
    'Cross-check (NOTES.md, an earlier run with keep-alive 2/1/3, bound 5 s): Kamailio saw the dead connection to a ringing UAS after ~5.1 s, never re-sent the INVITE, and the caller got 408 when fr_inv_timer expired — as here.',
    '',
    '{{chart}}',
  ].join('\n');
  type Series = { name: string; points: [number, number][]; dashed?: boolean };
  const series: Series[] = [
    { name: 're-send median', points: rounds.map((r) => [r.k, r.reopenMs.median ?? 0]) },
    { name: 're-send p99', points: rounds.map((r) => [r.k, r.reopenMs.p99 ?? 0]), dashed: true },
    { name: 'sip-server detection', points: rounds.map((r) => [r.k, r.detectionOverBoundMs.median ?? 0]) },
    { name: 'Kamailio detection', points: kamailioRounds.map((r) => [r.k, r.detectionOverBoundMs.median ?? 0]) },
  ];
  const svg = lineChart({
    title: 'Past the OS bound: sip-server re-open + re-send; detection − bound (median)',
    xLabel: 'K (calls whose connections died at once)',
    yLabel: 'ms',
    series: series.filter((s) => s.points.length > 0),
  });
  const data = { sysctls: SYSCTL, boundMs: BOUND_MS, rounds, kamailio: { frInvTimerMs: FR_INV_MS, rounds: kamailioRounds } };
  const paths = writeReport('stale', { data, markdown, svg });
  console.log(markdown.replace('{{chart}}', ''));
  console.log(`written ${paths.json}, ${paths.md}`);
});

interface Ringing {
  caller: SipPeer;
  callees: SipPeer[];
  calls: PeerCall[];
  incoming: IncomingCall[];
}

/** K endpoints registered over TCP, a UDP caller, K calls ringing; `peers` collects every peer for closing. */
async function ringing(k: number, peers: SipPeer[]): Promise<Ringing> {
  const udpDropsBefore = udpRcvbufErrors();
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
    // Ring 20 at a time, each lot's 180s at the caller before the next: 100 180s relayed back
    // to back can overflow the caller's UDP receive buffer, and a lost 180 is never re-sent
    // (seen through Kamailio at K = 1000).
    for (let j = 0; j < arrived.length; j += 20) {
      for (const c of arrived.slice(j, j + 20)) c.ring();
      await Promise.all(placed.slice(j, j + 20).map((c) => c.waitStatus(180)));
    }
    calls.push(...placed);
    incoming.push(...arrived);
  }
  // Keep-alive probes only start on connections with nothing unacknowledged (the 180s' ACKs).
  await serverSendQueuesEmpty(net, callees.map((p) => `${net.epAddr}:${registrationFlow(p)?.localPort ?? 0}`));
  console.log(`K = ${k}: ${udpRcvbufErrors() - udpDropsBefore} UDP datagrams dropped for a full receive buffer while setting up`);
  return { caller, callees, calls, incoming };
}

/** UDP datagrams the endpoints' namespace dropped for a full receive buffer (/proc/net/snmp is per namespace). */
function udpRcvbufErrors(): number {
  const rows = readFileSync('/proc/net/snmp', 'utf8').split('\n').filter((l) => l.startsWith('Udp:'));
  const names = rows[0]?.split(/\s+/) ?? [];
  const values = rows[1]?.split(/\s+/) ?? [];
  return Number(values[names.indexOf('RcvbufErrors')] ?? 0);
}

/** The connection the endpoint opened to register (the one the server should use towards it). */
const registrationFlow = (p: SipPeer): ReturnType<SipPeer['flows']>[number] | undefined => p.flows().find((f) => f.direction === 'opened');

/** Drops every TCP packet from or to the server's port 5060; returns when. */
/** When the endpoint received the call's INVITE again (same Via), if it did. */
function inviteAgainAt(p: SipPeer, call: IncomingCall | undefined): number | undefined {
  const via = call ? header(call.invite, 'via') : '';
  const copies = p.messages.filter((m) => m.dir === 'in' && m.message.kind === 'request' && m.message.method === 'INVITE' && header(m.message, 'via') === via);
  return copies.length >= 2 ? copies[1]?.at : undefined;
}

/**
 * The keep-alive idle time runs from the last packet on the connection: the endpoint's last
 * message on it before the drop (its 180), not the drop itself.
 */
function lastPacketAt(p: SipPeer, dropped: number): number {
  const flow = registrationFlow(p);
  return Math.max(...p.messages.filter((m) => m.remote.flowId === flow?.id && m.at <= dropped).map((m) => m.at));
}

const sipServerKs = TARGETS.includes('sip-server') ? KS : [];
const kamailioKs = TARGETS.includes('kamailio') ? KS : [];

it.each(sipServerKs)('K = %i ringing calls whose connections are dropped at once', async (k) => {
  const dns: Record<string, unknown> = { '1000': { type: 'extension', contact: '*' } };
  for (let i = 0; i < k; i++) dns[String(20000 + i)] = { type: 'extension', contact: '*' };
  let server: RunningServer | undefined;
  let events: EventStream | undefined;
  const peers: SipPeer[] = [];
  try {
    server = await startServer({ netns: { name: net.srv, address: net.srvAddr }, tserver: { 'sip-enable-tcp-keep-alive': true, 'sip-tcp-connect-timeout': 3000, 'sip-max-connections': 100_000 }, dns, logLevel: process.env.STALE_LOG ?? 'warn' });
    events = await EventStream.open(server.api, server.token);
    const { callees, calls, incoming } = await ringing(k, peers);
    const mark = events.events.length;
    const dropped = dropServerPort(net, 5060);

    // Every endpoint gets its INVITE again on a new connection, and answers it.
    const againAt = await Promise.all(callees.map((p, i) => p.waiter.until('the re-sent INVITE', 60_000, () => inviteAgainAt(p, incoming[i]))));
    const acks = incoming.map((c) => c.answer(sdp('callee', 50000)).catch(() => undefined));
    const finals = await Promise.all(calls.map((c) => c.final(30_000).catch(() => undefined)));
    await Promise.all(acks);
    const saved = finals.filter((f) => f?.status === 200).length;

    const stale = events.events.slice(mark).filter((e: ApiEvent) => e.event === 'ConnectionStale' && Array.isArray(e.active) && e.active.length > 0);
    const reopened = events.events.slice(mark).filter((e: ApiEvent) => e.event === 'ConnectionReopened');
    const staleAt = new Map(stale.map((e) => [String(e.remote), Date.parse(String(e.time))]));
    const detectedAt = (p: SipPeer): number | undefined => staleAt.get(`${net.epAddr}:${registrationFlow(p)?.localPort ?? 0}`);
    const detection = callees.flatMap((p) => {
      const at = detectedAt(p);
      const last = lastPacketAt(p, dropped);
      return at !== undefined && Number.isFinite(last) ? [at - last - BOUND_MS] : [];
    });
    const reopenMs = reopened.map((e) => Number(e.reopenMs));
    const againAfter = callees
      .map((p, i) => {
        const at = detectedAt(p);
        const again = againAt[i];
        return at !== undefined && again !== undefined ? again - at : NaN;
      })
      .filter((v) => Number.isFinite(v));
    const round: Round = {
      k,
      detectionOverBoundMs: stats(detection),
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

it.each(kamailioKs)('Kamailio: K = %i ringing calls whose connections are dropped at once', async (k) => {
  let kam: RunningKamailio | undefined;
  const peers: SipPeer[] = [];
  try {
    kam = await startKamailio({ netns: net.srv, address: net.srvAddr, port: SERVER.port, frInvTimerMs: FR_INV_MS, keepalive: { idle: SYSCTL.time, intvl: SYSCTL.intvl, cnt: SYSCTL.probes } });
    const { caller, callees, calls, incoming } = await ringing(k, peers);
    const onRegistrationFlow = incoming.filter((c, i) => {
      const flow = callees[i] ? registrationFlow(callees[i]) : undefined;
      return flow !== undefined && c.tx.from.flowId === flow.id;
    }).length;
    const logMark = kam.lines.length;
    const dropped = dropServerPort(net, 5060);

    // Wait for the caller's final responses, answering any INVITE that comes again (as the
    // sip-server's endpoints do) until then.
    const answered = new Set<number>();
    const deadline = dropped + FR_INV_MS + 15_000;
    while (calls.some((c) => c.tx.final === undefined) && Date.now() < deadline) {
      callees.forEach((p, i) => {
        const call = incoming[i];
        if (call && !answered.has(i) && inviteAgainAt(p, call) !== undefined) {
          answered.add(i);
          call.answer(sdp('callee', 50000)).catch(() => undefined);
        }
      });
      await new Promise((r) => setTimeout(r, 50));
    }
    // Then a second for what follows the final (ACKs, Kamailio's CANCELs) to be seen.
    await new Promise((r) => setTimeout(r, 1000));
    const saved = calls.filter((c) => c.tx.final?.status === 200 && c.state === 'established').length;

    // Kamailio's log: "... error reading: Connection timed out (110) ([EP]:PORT ->" and, as a
    // second log call, "-> [SRV]:5060)": the TCP readers' halves interleave, so one line of
    // output can hold several connections.
    if (process.env.STALE_LOG_KAMAILIO) for (const l of kam.lines.slice(process.env.STALE_LOG_KAMAILIO === 'all' ? 0 : logMark)) console.log(l.at - dropped, l.text);
    const deadAt = new Map<string, number>();
    for (const l of kam.lines.slice(logMark)) {
      for (const m of l.text.matchAll(/error reading: Connection timed out \(\d+\) \(\[?([\d.]+)\]?:(\d+)/g)) {
        if (!deadAt.has(`${m[1]}:${m[2]}`)) deadAt.set(`${m[1]}:${m[2]}`, l.at);
      }
    }
    const detection = callees.flatMap((p) => {
      const at = deadAt.get(`${net.epAddr}:${registrationFlow(p)?.localPort ?? 0}`);
      const last = lastPacketAt(p, dropped);
      return at !== undefined && Number.isFinite(last) ? [at - last - BOUND_MS] : [];
    });
    const cancelConnectsRefused = kam.lines.slice(logMark).filter((l) => /tcpconn_1st_send\(\): connect .* failed/.test(l.text)).length;
    const again = callees.flatMap((p, i) => {
      const at = inviteAgainAt(p, incoming[i]);
      return at !== undefined ? [at - dropped] : [];
    });
    const finalAt = (c: PeerCall): number | undefined =>
      caller.messages.find((m) => m.dir === 'in' && m.message.kind === 'response' && m.message.status >= 200 && branchOf(m.message) === branchOf(c.invite))?.at;
    const ringingAt = (c: PeerCall): number | undefined =>
      caller.messages.find((m) => m.dir === 'in' && m.message.kind === 'response' && m.message.status === 180 && branchOf(m.message) === branchOf(c.invite))?.at;
    const callerFinal: Record<string, number> = {};
    for (const c of calls) {
      const status = String(c.tx.final?.status ?? 'none');
      callerFinal[status] = (callerFinal[status] ?? 0) + 1;
    }
    const afterDrop = calls.flatMap((c) => {
      const at = finalAt(c);
      return at !== undefined ? [at - dropped] : [];
    });
    const after180 = calls.flatMap((c) => {
      const at = finalAt(c);
      const rang = ringingAt(c);
      return at !== undefined && rang !== undefined ? [at - rang] : [];
    });
    const round: KamailioRound = {
      k,
      frInvTimerMs: FR_INV_MS,
      inviteOnRegistrationFlow: onRegistrationFlow,
      detected: detection.length,
      detectionOverBoundMs: stats(detection),
      inviteAgain: again.length,
      inviteAgainAfterDropMs: { median: median(again), p99: percentile(again, 99) },
      saved,
      savedShare: saved / k,
      callerFinal,
      callerFinalAfterDropMs: stats(afterDrop),
      callerFinalAfter180Ms: { median: median(after180), p99: percentile(after180, 99) },
      cancelConnectsRefused,
      contactConnections: callees.filter((p) => p.flows().some((f) => f.direction === 'accepted')).length,
    };
    kamailioRounds.push(round);
    console.log(JSON.stringify(round));
    // The scenario held: every INVITE went down the connection that was then dropped, and
    // every caller got an answer of some kind.
    expect(onRegistrationFlow).toBe(k);
    expect(callerFinal.none ?? 0).toBe(0);
    await Promise.all(calls.filter((c) => c.state === 'established').map((c) => c.bye().catch(() => undefined)));
  } finally {
    clearRules();
    for (const p of peers) await p.close();
    await kam?.stop();
  }
});
