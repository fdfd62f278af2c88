#!/usr/bin/env node
// bench/calls (issues 6 and 14): SIPp UAC → X → SIPp UAS (registered as DN 1002), over UDP and
// TCP (one connection each way), where X is
//   direct      nothing: SIPp to SIPp, the harness's ceiling;
//   sip-server  this server (a B2BUA: two dialogs per call);
//   sip-server+hep  the same with HEP export on (hep-address: every SIP message in and out
//               also sent as a HEPv3 packet) to a UDP sink this script opens and counts (its
//               CPU is the script's, not the target's): run it beside sip-server (--hep adds
//               it there) to see what capture costs;
//   sip-server-x2  two independent sip-server processes, each with its own SIPp UAC and UAS
//               and half the rate (a trial passes when both halves pass; rates, CPU, RSS
//               add up): what two worker processes could give at best on this machine, with
//               no cost at all for sharing the calls out (issue 14: "use both cores");
//   sip-server-edge-x2  the deployment of docs/deployment.md: Kamailio with
//               deploy/kamailio/kamailio.cfg in front of two sip-server processes, calls shared
//               out by its dispatcher (Call-ID hash); DN 1002 is a fixed contact (the UAS) on
//               both, so no store is shared: what two instances give with the edge's cost paid;
//   kamailio    Kamailio 5.6 as a transaction-stateful proxy with an in-memory registrar
//               (bench/kamailio/proxy.cfg; Debian package `kamailio`, installed if missing).
// Two call scenarios (--scenarios):
//   ours        test/sipp/uac-basic.xml → uas-basic.xml: INVITE, 180, 200, ACK, 200 ms hold, BYE;
//   builtin     SIPp's own `-sn uac -d 0` → `-sn uas`: the same call with no hold (its UAS
//               answers 180 then 200 and keeps each call 4 s in timewait after the BYE).
// For each, the call rate is stepped up (doubling, then two steps of refinement between the
// last rate that passed and the first that failed), each step a fixed-rate trial of --seconds,
// with a fresh target and UAS, warmed up by --warmup s (default 3) of calls at 500/s (or the
// step's rate, if lower) that are not measured: a Node server compiles its hot path in its
// first seconds, and what an operator runs is a server that has been up. A trial passes only
// when, all at once:
//   calls            every call placed succeeded at the UAC (SIPp "Successful call" = calls, 0 failed);
//   retransmissions  0, counted by both SIPp sides (Retransmissions(C) of -trace_stat: its own
//                    timer retransmissions and its answers to the peer's retransmissions); the
//                    UAS is stopped with SIGUSR1 after the UAC has finished and waited for, so
//                    its figure is the final one;
//   time             the last call was done (SIPp's own elapsed time) within 1 s of the nominal
//                    length: calls ÷ rate, plus the scenario's hold;
//   rate             ≥ 90 % of the offered rate achieved: 200s received per second from the first
//                    call's to the last's (SIPp's response-time trace).
// The highest passing rate below the first failing one is kept, with the CPU and RSS of X and
// the call-setup latency (INVITE sent → 200 received at the UAC: median, p99), and the ratio
// sip-server ÷ kamailio per transport and scenario. Writes bench/results/<date>-calls.{json,md,svg}.
//
//   npm run bench:calls -- [--seconds 10] [--warmup 3] [--transports udp,tcp] [--targets direct,sip-server,kamailio]
//                          [--scenarios ours,builtin] [--start 250] [--max 32000] [--hep] [--no-write]
//   --hep       adds the target sip-server+hep after sip-server;
//   --no-write  prints the report without writing bench/results (a smoke run);
//   node bench/calls/run.mjs --from-json bench/results/<date>-calls.json   (report again, no measuring;
//   files from before the strict criterion are reported with the old one, and say so)
import { execFileSync, spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { lineChart, median, percentile, root, writeReport } from '../report/report.mjs';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '3' },
    start: { type: 'string', default: '250' },
    max: { type: 'string', default: '32000' },
    transports: { type: 'string', default: 'udp,tcp' },
    targets: { type: 'string', default: 'direct,sip-server,kamailio' },
    scenarios: { type: 'string', default: 'ours,builtin' },
    'from-json': { type: 'string' },
    hep: { type: 'boolean', default: false },
    'no-write': { type: 'boolean', default: false },
  },
});
const TARGETS = ['direct', 'sip-server', 'sip-server+hep', 'sip-server-x2', 'sip-server-edge-x2', 'kamailio'];
/** Independent instances of a target (each with its own SIPp UAC and UAS, an even share of the rate). */
const LANES = { 'sip-server-x2': 2 };
/** --targets, with sip-server+hep after sip-server (or last) when --hep is given. */
function targetList() {
  const list = values.targets.split(',');
  for (const t of list) if (!TARGETS.includes(t)) throw new Error(`unknown target ${t} (${TARGETS.join(', ')})`);
  if (values.hep && !list.includes('sip-server+hep')) {
    const at = list.indexOf('sip-server');
    list.splice(at < 0 ? list.length : at + 1, 0, 'sip-server+hep');
  }
  return list;
}
let seconds = Number(values.seconds);
/** Seconds of calls at WARMUP_RATE (or the step's rate, if lower) before each measured trial. */
let warmupSeconds = Number(values.warmup);
const WARMUP_RATE = 500;
const TICKS = 100; // USER_HZ

/**
 * The call scenarios: SIPp's arguments on each side and the hold (s) of a call, part of the
 * nominal length of a trial. SIPp's built-in uac sends ACK and BYE to sip:1002@<target> (not to
 * the 200's Contact, no route set): the B2BUA is that target anyway; the Kamailio config looks
 * 1002 up again for an in-dialog request addressed to itself.
 */
const SCENARIOS = {
  ours: { uac: ['-sf', join(root, 'test/sipp/uac-basic.xml')], uas: ['-sf', join(root, 'test/sipp/uas-basic.xml')], holdS: 0.2, what: 'test/sipp/uac-basic.xml → uas-basic.xml, 200 ms hold' },
  builtin: { uac: ['-sn', 'uac', '-d', '0'], uas: ['-sn', 'uas'], holdS: 0, what: "SIPp's built-in uac (-d 0, no hold) → uas" },
};
const MIN_RATE_SHARE = 0.9; // of the offered rate
const TIME_SLACK_S = 1; // past the nominal length

async function freePort() {
  for (;;) {
    const port = await new Promise((r) => {
      const s = createServer();
      s.listen(0, '127.0.0.1', () => {
        const p = s.address().port;
        s.close(() => r(p));
      });
    });
    const ok = await new Promise((r) => {
      const u = createSocket('udp4');
      u.once('error', () => r(false));
      u.bind(port, '127.0.0.1', () => u.close(() => r(true)));
    });
    if (ok) return port;
  }
}

function run(cmd, args, cwd) {
  return new Promise((done) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (out += d));
    p.once('exit', (code) => done({ code, out }));
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The process and all its descendants. */
function tree(pid) {
  const children = new Map();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (!children.has(ppid)) children.set(ppid, []);
      children.get(ppid).push(Number(name));
    } catch {
      /* gone */
    }
  }
  const out = [];
  const walk = (p) => {
    out.push(p);
    for (const c of children.get(p) ?? []) walk(c);
  };
  walk(pid);
  return out;
}

function cpuTicks(pids) {
  let t = 0;
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      t += Number(f[11]) + Number(f[12]);
    } catch {
      /* gone */
    }
  }
  return t;
}

function rssKb(pids) {
  let kb = 0;
  for (const pid of pids) {
    try {
      kb += Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
    } catch {
      /* gone */
    }
  }
  return kb;
}

async function waitBound(port) {
  for (let i = 0; i < 200; i++) {
    const taken = await new Promise((r) => {
      const u = createSocket('udp4');
      u.once('error', () => r(true));
      u.bind(port, '127.0.0.1', () => u.close(() => r(false)));
    });
    if (taken) return;
    await sleep(50);
  }
  throw new Error(`nothing listens on UDP ${port}`);
}

/**
 * A HEP collector that only counts: a UDP socket on 127.0.0.1 for sip-server+hep, so that
 * the server's packets are received (not refused with ICMP) at the cost of a read each.
 */
async function startHepSink() {
  const socket = createSocket('udp4');
  const sink = { port: 0, packets: 0, bytes: 0, close: () => new Promise((r) => socket.close(r)) };
  socket.on('message', (m) => {
    sink.packets++;
    sink.bytes += m.length;
  });
  await new Promise((r) => socket.bind(0, '127.0.0.1', r));
  try {
    socket.setRecvBufferSize(8 * 1024 * 1024);
  } catch {
    /* the kernel's cap (net.core.rmem_max) stands */
  }
  sink.port = socket.address().port;
  return sink;
}

/** `contact`: DN 1002's fixed contact (else it registers: "*"). */
async function startSipServer(port, hepPort, contact = '*') {
  const dir = mkdtempSync(join(tmpdir(), 'bench-calls-'));
  const config = join(dir, 'config.yaml');
  const hep = hepPort ? `  hep-address: 127.0.0.1\n  hep-port: ${hepPort}\n` : '';
  writeFileSync(
    config,
    `TServer:\n  sip-port: ${port}\n  http-port: 0\n${hep}  store: "sqlite:${join(dir, 'state.db')}"\nlog:\n  level: warn\ndns:\n  "1002": { type: extension, contact: "${contact}" }\n`,
  );
  const proc = spawn(process.execPath, [join(root, 'dist/cli.js'), '--config', config], { stdio: ['ignore', 'ignore', 'inherit'] });
  await waitBound(port);
  return { pid: proc.pid, stop: () => proc.kill('SIGKILL') };
}

function ensureKamailio() {
  if (existsSync('/usr/sbin/kamailio')) return;
  console.log('installing Debian package kamailio …');
  execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'kamailio'], { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
}

async function startKamailio(port) {
  ensureKamailio();
  const dir = mkdtempSync(join(tmpdir(), 'bench-kamailio-'));
  const cfg = join(dir, 'proxy.cfg');
  writeFileSync(cfg, readFileSync(join(root, 'bench/kamailio/proxy.cfg'), 'utf8').replaceAll('__ADDR__', '127.0.0.1').replaceAll('__PORT__', String(port)));
  // -DD: stay in the foreground; tlsf: Debian's default allocator is ~5× slower (NOTES.md).
  // Its own process group: Kamailio forks its workers, and stopping only the main process
  // (SIGKILL) left them running, each step's set holding its shared memory.
  const proc = spawn('kamailio', ['-f', cfg, '-DD', '-E', '-x', 'tlsf', '-X', 'tlsf', '-m', '2048', '-M', '64', '-Y', dir], { stdio: ['ignore', 'ignore', 'ignore'], detached: true });
  await waitBound(port);
  return {
    pid: proc.pid,
    stop: () => {
      try {
        process.kill(-proc.pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    },
  };
}

/**
 * Kamailio as the edge (deploy/kamailio/kamailio.cfg) on `port` in front of two sip-servers
 * whose DN 1002 is the UAS at `uasPort`: the UAC's calls are shared out by Call-ID.
 */
async function startEdgeX2(port, uasPort, transport) {
  ensureKamailio();
  const contact = `sip:1002@127.0.0.1:${uasPort};transport=${transport}`;
  const ports = [await freePort(), await freePort()];
  const servers = await Promise.all(ports.map((p) => startSipServer(p, undefined, contact)));
  const dir = mkdtempSync(join(tmpdir(), 'bench-edge-'));
  const list = join(dir, 'dispatcher.list');
  writeFileSync(list, ports.map((p) => `1 sip:127.0.0.1:${p}\n`).join(''));
  // One UDP worker (-n 1) relays strictly in order (NOTES.md); tlsf as for the kamailio target.
  const proc = spawn(
    'kamailio',
    ['-f', join(root, 'deploy/kamailio/kamailio.cfg'), '-DD', '-E', '-x', 'tlsf', '-X', 'tlsf', '-m', '2048', '-M', '64', '-Y', dir, '-n', '1',
      '-l', `udp:127.0.0.1:${port}`, '-l', `tcp:127.0.0.1:${port}`, '-A', `DS_LIST="${list}"`],
    { stdio: ['ignore', 'ignore', 'ignore'], detached: true },
  );
  await waitBound(port);
  return {
    pids: [proc.pid, ...servers.map((x) => x.pid)],
    stop: () => {
      try {
        process.kill(-proc.pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
      for (const x of servers) x.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function register(serverPort, dn, contactPort, transport) {
  const u = createSocket('udp4');
  await new Promise((r) => u.bind(0, '127.0.0.1', r));
  const me = u.address().port;
  const msg = [
    `REGISTER sip:127.0.0.1:${serverPort} SIP/2.0`,
    `Via: SIP/2.0/UDP 127.0.0.1:${me};branch=z9hG4bKbench${dn}${Date.now()}`,
    'Max-Forwards: 70',
    `From: <sip:${dn}@127.0.0.1>;tag=b${dn}`,
    `To: <sip:${dn}@127.0.0.1>`,
    `Call-ID: bench-${dn}-${Date.now()}`,
    'CSeq: 1 REGISTER',
    `Contact: <sip:${dn}@127.0.0.1:${contactPort};transport=${transport}>`,
    'Expires: 3600',
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n');
  const answer = new Promise((r) => u.once('message', (m) => r(m.toString().split('\r\n')[0])));
  u.send(msg, serverPort, '127.0.0.1');
  const line = await Promise.race([answer, sleep(3000).then(() => 'no answer')]);
  u.close();
  if (!line.includes(' 200 ')) throw new Error(`REGISTER ${dn}: ${line}`);
}


/** The last row of a SIPp -trace_stat file (cumulative counters), or null. */
function lastStats(file) {
  if (!existsSync(file)) return null;
  const lines = readFileSync(file, 'utf8').split('\n').filter((l) => l.trim() !== '');
  if (lines.length < 2) return null;
  const head = lines[0].split(';');
  const row = lines.at(-1).split(';');
  const get = (name) => row[head.indexOf(name)];
  const num = (name) => (head.includes(name) ? Number(get(name)) : null);
  // "2026-12-02\t01:40:08.171307\t1796175608.171307": the epoch is the last field.
  const epoch = (name) => Number(get(name)?.split('\t').at(-1));
  return {
    elapsedS: epoch('CurrentTime') - epoch('StartTime'),
    outgoing: num('OutgoingCall(C)'),
    incoming: num('IncomingCall(C)'),
    successful: num('SuccessfulCall(C)'),
    failed: num('FailedCall(C)'),
    retransmissions: num('Retransmissions(C)'),
    deadCallMsgs: num('DeadCallMsgs(C)'),
    outOfCallMsgs: num('OutOfCallMsgs(C)'),
  };
}

/**
 * Stops the UAS and waits for it, so that its statistics file ends with its final figures:
 * SIGUSR1 is SIPp's graceful quit (no new calls, wait for the open ones: the built-in uas keeps
 * each call 4 s in timewait); a second one aborts the calls left, then SIGKILL.
 */
async function stopUas(uas, exited) {
  const waitExit = (ms) => Promise.race([exited.then(() => true), sleep(ms).then(() => false)]);
  if (uas.exitCode !== null) return 'exited early';
  uas.kill('SIGUSR1');
  if (await waitExit(8000)) return 'graceful';
  uas.kill('SIGUSR1');
  if (await waitExit(2000)) return 'forced';
  uas.kill('SIGKILL');
  await waitExit(1000);
  return 'killed';
}

/**
 * One fixed-rate trial: `rate` calls/s for `seconds` with the UAS already listening, and
 * everything the pass criterion needs, with the CPU, RSS and latency seen.
 */
async function step({ transport, scenario, targetPort, dn, rate, roots, uas, uasExited, dir }) {
  const sippT = transport === 'tcp' ? 't1' : 'u1';
  const sc = SCENARIOS[scenario];
  const calls = rate * seconds;
  const uacStats = join(dir, 'uac-stats.csv');
  // The target's processes: its root processes (several for sip-server-edge-x2) and their children.
  const pid = roots.length > 0 ? roots[0] : undefined;
  const all = () => roots.flatMap(tree);
  const pids = all();
  const cpu0 = cpuTicks(pids);
  let rssMax = rssKb(pids);
  const sampler = setInterval(() => (rssMax = Math.max(rssMax, rssKb(all()))), 500);
  const t0 = Date.now();
  const r = await run(
    'sipp',
    [
      ...sc.uac, '-t', sippT, '-i', '127.0.0.1', '-s', dn,
      '-r', String(rate), '-m', String(calls), '-l', String(Math.max(100, rate * 2)), '-timeout', `${seconds * 3 + 30}s`, '-timeout_error',
      '-nostdin', '-buff_size', '4194304', '-max_socket', '60000', '-trace_rtt', '-rtt_freq', '100',
      '-trace_stat', '-stf', uacStats, '-fd', '1', `127.0.0.1:${targetPort}`,
    ],
    dir,
  );
  const wallS = (Date.now() - t0) / 1000;
  clearInterval(sampler);
  const cpuPct = pid ? (100 * (cpuTicks(all()) - cpu0)) / TICKS / wallS : null;
  // Late retransmissions (e.g. of a BYE's 200) still count: give them a second, then stop the UAS.
  await sleep(1000);
  const uasStop = await stopUas(uas, uasExited);
  const uac = lastStats(uacStats);
  const uasS = lastStats(join(dir, 'uas-stats.csv'));
  const rttFile = readdirSync(dir).find((f) => f.endsWith('_rtt.csv'));
  const samples = rttFile
    ? readFileSync(join(dir, rttFile), 'utf8')
        .split('\n')
        .slice(1)
        .map((l) => l.split(';').map(Number))
        .filter(([at, rtt]) => Number.isFinite(at) && Number.isFinite(rtt))
    : [];
  const rtts = samples.map(([, rtt]) => rtt);
  // Setups per second from the first 200 to the last (Date_ms: when each 200 arrived).
  const ats = samples.map(([at]) => at).sort((a, b) => a - b);
  const spanS = ats.length > 1 ? (ats.at(-1) - ats[0]) / 1000 : 0;
  const achievedCps = spanS > 0 ? Math.round((ats.length - 1) / spanS) : null;
  const round3 = (x) => (x === null || x === undefined || !Number.isFinite(x) ? null : Math.round(x * 1000) / 1000);
  return {
    scenario,
    seconds,
    rate,
    calls,
    placed: uac?.outgoing ?? null,
    successful: uac?.successful ?? null,
    failed: uac?.failed ?? Number(/Failed call\s*\|\s*\d+\s*\|\s*(\d+)/.exec(r.out)?.[1] ?? (r.code === 0 ? 0 : calls)),
    retransUac: uac?.retransmissions ?? null,
    retransUas: uasS?.retransmissions ?? null,
    // Messages for calls SIPp had already ended (e.g. a request retransmitted after the call's
    // end): not in Retransmissions(C), recorded to see them.
    lateMsgsUac: uac ? uac.deadCallMsgs + uac.outOfCallMsgs : null,
    lateMsgsUas: uasS ? uasS.deadCallMsgs + uasS.outOfCallMsgs : null,
    uasSuccessful: uasS?.successful ?? null,
    uasFailed: uasS?.failed ?? null,
    uasStop,
    sippExit: r.code,
    wallS,
    elapsedS: round3(uac?.elapsedS),
    nominalS: round3(calls / rate + sc.holdS),
    achievedCps,
    cpuPct: cpuPct === null ? null : Math.round(cpuPct),
    rssMB: pid ? Math.round(rssMax / 1024) : null,
    setupMs: { median: median(rtts), p99: percentile(rtts, 99), samples: rtts.length },
    rtts,
  };
}

/** Steps saved before the strict criterion (issue 14) carry no retransmission counts. */
const isLegacy = (s) => !('retransUac' in s);

/**
 * Which conditions of the pass criterion a step failed (none: it passed). Strict (issue 14):
 * every call successful, no retransmission on either SIPp side, the last call done within 1 s
 * of the nominal length, ≥ 90 % of the offered rate achieved. Legacy steps (older JSON): no
 * call failed and SIPp was done within the step's length + 2 s, as then.
 */
function failedConditions(s, legacySeconds) {
  const why = [];
  if (isLegacy(s)) {
    if (s.failed !== 0 || s.sippExit !== 0) why.push(`calls: ${s.failed} failed${s.sippExit ? `, SIPp exit ${s.sippExit}` : ''}`);
    if (!(s.wallS <= legacySeconds + 2)) why.push(`time: ${s.wallS} s > ${legacySeconds} s + 2 (old criterion)`);
    return why;
  }
  if (s.successful !== s.calls || s.failed !== 0 || s.sippExit !== 0) why.push(`calls: ${s.successful ?? '?'} of ${s.calls} successful, ${s.failed ?? '?'} failed${s.sippExit ? `, SIPp exit ${s.sippExit}` : ''}`);
  if (s.retransUac !== 0 || s.retransUas !== 0) why.push(`retransmissions: UAC ${s.retransUac ?? '?'}, UAS ${s.retransUas ?? '?'}${s.uasStop === 'graceful' ? '' : ` (UAS ${s.uasStop})`}`);
  if (!(s.elapsedS !== null && s.elapsedS <= s.nominalS + TIME_SLACK_S)) why.push(`time: last call done at ${s.elapsedS ?? '?'} s > ${s.nominalS} s + ${TIME_SLACK_S}`);
  if (!(s.achievedCps !== null && s.achievedCps >= MIN_RATE_SHARE * s.rate)) why.push(`rate: ${s.achievedCps ?? '?'}/s achieved < ${MIN_RATE_SHARE * 100} % of ${s.rate}/s`);
  return why;
}

/**
 * Calls before the trial, not measured (but the UAS's retransmission count, read at the end of
 * the trial, includes theirs): the target's JIT compiles the hot path meanwhile.
 */
async function warmUp({ transport, scenario, targetPort, dn, rate, dir }) {
  if (!(warmupSeconds > 0)) return;
  const warmRate = Math.min(rate, WARMUP_RATE);
  await run(
    'sipp',
    [
      ...SCENARIOS[scenario].uac, '-t', transport === 'tcp' ? 't1' : 'u1', '-i', '127.0.0.1', '-s', dn,
      '-r', String(warmRate), '-m', String(Math.round(warmRate * warmupSeconds)), '-l', String(Math.max(100, warmRate * 2)),
      '-timeout', `${warmupSeconds * 3 + 30}s`, '-timeout_error', '-nostdin', '-buff_size', '4194304', '-max_socket', '60000', `127.0.0.1:${targetPort}`,
    ],
    dir,
  );
  await sleep(500);
}

/** A fresh target and UAS for each step, so that one overloaded step cannot spoil the next. */
async function freshStep(target, transport, scenario, rate) {
  const lanes = LANES[target];
  if (!lanes) return freshLane(target, transport, scenario, rate);
  const share = rate / lanes;
  const parts = await Promise.all(Array.from({ length: lanes }, () => freshLane('sip-server', transport, scenario, share)));
  return { ...mergeLanes(parts), rate };
}

/** One step of several lanes side by side, as one: counts, rates, CPU and RSS summed; the last call's time the latest. */
function mergeLanes(parts) {
  const sum = (k) => (parts.some((p) => p[k] === null || p[k] === undefined) ? null : parts.reduce((a, p) => a + p[k], 0));
  const rtts = parts.flatMap((p) => p.rtts);
  return {
    ...parts[0],
    lanes: parts.length,
    calls: sum('calls'), placed: sum('placed'), successful: sum('successful'), failed: sum('failed'),
    retransUac: sum('retransUac'), retransUas: sum('retransUas'), lateMsgsUac: sum('lateMsgsUac'), lateMsgsUas: sum('lateMsgsUas'),
    uasSuccessful: sum('uasSuccessful'), uasFailed: sum('uasFailed'),
    uasStop: parts.every((p) => p.uasStop === 'graceful') ? 'graceful' : parts.find((p) => p.uasStop !== 'graceful').uasStop,
    sippExit: parts.find((p) => p.sippExit !== 0)?.sippExit ?? 0,
    wallS: Math.max(...parts.map((p) => p.wallS)),
    elapsedS: parts.some((p) => p.elapsedS === null) ? null : Math.max(...parts.map((p) => p.elapsedS)),
    achievedCps: sum('achievedCps'), cpuPct: sum('cpuPct'), rssMB: sum('rssMB'),
    setupMs: { median: median(rtts), p99: percentile(rtts, 99), samples: rtts.length },
    rtts,
  };
}

async function freshLane(target, transport, scenario, rate) {
  const dn = '1002';
  const uasPort = await freePort();
  let proc;
  let targetPort = uasPort;
  const sink = target === 'sip-server+hep' ? await startHepSink() : undefined;
  if (target !== 'direct') {
    targetPort = await freePort();
    if (target === 'sip-server-edge-x2') proc = await startEdgeX2(targetPort, uasPort, transport);
    else {
      proc = target === 'kamailio' ? await startKamailio(targetPort) : await startSipServer(targetPort, sink?.port);
      await register(targetPort, dn, uasPort, transport);
    }
  }
  const dir = mkdtempSync(join(tmpdir(), 'bench-step-'));
  const uas = spawn(
    'sipp',
    [...SCENARIOS[scenario].uas, '-t', transport === 'tcp' ? 't1' : 'u1', '-i', '127.0.0.1', '-p', String(uasPort), '-nostdin', '-buff_size', '4194304', '-max_socket', '60000', '-trace_stat', '-stf', join(dir, 'uas-stats.csv'), '-fd', '1'],
    { stdio: 'ignore', cwd: dir },
  );
  const uasExited = new Promise((r) => uas.once('exit', r));
  await sleep(300);
  try {
    await warmUp({ transport, scenario, targetPort, dn, rate, dir });
    const before = sink ? sink.packets : 0;
    const cpu0 = process.cpuUsage();
    const s = await step({ transport, scenario, targetPort, dn, rate, roots: proc ? (proc.pids ?? [proc.pid]) : [], uas, uasExited, dir });
    // HEP packets the sink got during the trial (and the second after it): one per SIP message in or out.
    if (sink) {
      s.hepPackets = sink.packets - before;
      // The sink is this script, on the same 2 cores: its CPU over the step (µs → % of a core).
      const used = process.cpuUsage(cpu0);
      s.sinkCpuPct = Math.round((used.user + used.system) / (1e4 * s.wallS));
    }
    return s;
  } finally {
    if (uas.exitCode === null && uas.signalCode === null) uas.kill('SIGKILL');
    proc?.stop();
    await sink?.close();
    rmSync(dir, { recursive: true, force: true });
    await sleep(500);
  }
}

const fmt = (x) => x ?? '–';

async function measure(target, transport, scenario) {
  const steps = [];
  const tryRate = async (rate) => {
    const s = await freshStep(target, transport, scenario, rate);
    delete s.rtts;
    s.failedConditions = failedConditions(s);
    steps.push(s);
    console.log(
      `  ${target} ${transport.toUpperCase()} ${scenario} ${rate}/s: ${s.failedConditions.length ? `FAIL (${s.failedConditions.map((c) => c.split(':')[0]).join(', ')})` : 'pass'}; ` +
        `${fmt(s.successful)}/${s.calls} successful, ${fmt(s.failed)} failed, retrans UAC ${fmt(s.retransUac)} UAS ${fmt(s.retransUas)}${s.uasStop === 'graceful' ? '' : ` (UAS ${s.uasStop})`}, ` +
        `${fmt(s.achievedCps)}/s achieved, last call ${fmt(s.elapsedS)} s (nominal ${s.nominalS}), wall ${s.wallS} s, ` +
        `CPU ${fmt(s.cpuPct)} %, RSS ${fmt(s.rssMB)} MB, setup median ${fmt(s.setupMs.median)} ms p99 ${fmt(s.setupMs.p99)} ms` +
        (s.lateMsgsUac || s.lateMsgsUas ? `, late msgs UAC ${s.lateMsgsUac} UAS ${s.lateMsgsUas}` : '') +
        (s.hepPackets !== undefined ? `, HEP packets ${s.hepPackets} (sink CPU ${s.sinkCpuPct} %)` : ''),
    );
    return s.failedConditions.length === 0;
  };
  let pass = 0;
  let fail = 0;
  for (let rate = Number(values.start); rate <= Number(values.max); rate *= 2) {
    if (await tryRate(rate)) pass = rate;
    else {
      fail = rate;
      break;
    }
  }
  // Two refinement steps between the last pass and the first failure.
  for (let i = 0; i < 2 && fail > 0; i++) {
    const mid = Math.round((pass + fail) / 2 / 50) * 50;
    if (mid <= pass || mid >= fail) break;
    if (await tryRate(mid)) pass = mid;
    else fail = mid;
  }
  return summarize(target, transport, scenario, steps);
}

/** The highest passing rate below the first failing one, from the steps measured. */
function summarize(target, transport, scenario, steps, legacySeconds) {
  const sorted = [...steps].sort((a, b) => a.rate - b.rate).map((s) => ({ ...s, failedConditions: failedConditions(s, legacySeconds) }));
  const passed = (s) => s.failedConditions.length === 0;
  const firstFail = sorted.find((s) => !passed(s));
  const best = sorted.filter((s) => passed(s) && (!firstFail || s.rate < firstFail.rate)).at(-1) ?? null;
  return {
    target,
    transport,
    scenario,
    criterion: sorted.some(isLegacy) ? 'legacy' : 'strict',
    highestPassingRate: best?.rate ?? 0,
    firstFailingRate: firstFail?.rate ?? null,
    firstFailure: firstFail ? firstFail.failedConditions : null,
    atBest: best,
    steps: sorted,
  };
}

const results = [];
if (values['from-json']) {
  // Report again from a run's saved steps (e.g. after a change of the pass rule).
  const saved = JSON.parse(readFileSync(values['from-json'], 'utf8'));
  seconds = saved.secondsPerStep;
  warmupSeconds = saved.warmupSeconds ?? 0;
  for (const r of saved.results) {
    const scenario = r.scenario ?? 'ours';
    if (r.steps.some(isLegacy)) console.warn(`${r.target} ${r.transport} ${scenario}: saved before the strict criterion (no retransmission counts): reported with the old one (no failed call, done within the step + 2 s)`);
    results.push(summarize(r.target, r.transport, scenario, r.steps, saved.secondsPerStep));
  }
} else {
  for (const transport of values.transports.split(',')) {
    for (const scenario of values.scenarios.split(',')) {
      if (!SCENARIOS[scenario]) throw new Error(`unknown scenario ${scenario} (ours, builtin)`);
      for (const target of targetList()) {
        console.log(`${target} over ${transport.toUpperCase()}, scenario ${scenario}:`);
        results.push(await measure(target, transport, scenario));
      }
    }
  }
}

const legacy = results.some((r) => r.criterion === 'legacy');
const distinct = (key) => [...new Set(results.map((r) => r[key]))];
const resultOf = (target, transport, scenario) => results.find((r) => r.target === target && r.transport === transport && r.scenario === scenario);
const rateOf = (...k) => resultOf(...k)?.highestPassingRate ?? null;
/** A rate that never failed (up to --max) is only a lower bound: "≥ rate". */
const capped = (...k) => resultOf(...k) !== undefined && resultOf(...k).firstFailingRate === null;
const shown = (...k) => (rateOf(...k) === null ? '–' : `${capped(...k) ? '≥ ' : ''}${rateOf(...k)}`);
const ratio = (a, b) => (a && b ? Math.round((a / b) * 100) / 100 : null);
const ratios = distinct('transport').flatMap((transport) =>
  distinct('scenario').map((scenario) => ({
    transport,
    scenario,
    sipServer: rateOf('sip-server', transport, scenario),
    kamailio: rateOf('kamailio', transport, scenario),
    direct: rateOf('direct', transport, scenario),
    vsKamailio: ratio(rateOf('sip-server', transport, scenario), rateOf('kamailio', transport, scenario)),
    vsCeiling: ratio(rateOf('sip-server', transport, scenario), rateOf('direct', transport, scenario)),
    withHep: rateOf('sip-server+hep', transport, scenario),
    hepVsPlain: ratio(rateOf('sip-server+hep', transport, scenario), rateOf('sip-server', transport, scenario)),
    twoVsOne: ratio(rateOf('sip-server-x2', transport, scenario), rateOf('sip-server', transport, scenario)),
    edgeVsOne: ratio(rateOf('sip-server-edge-x2', transport, scenario), rateOf('sip-server', transport, scenario)),
    edgeVsKamailio: ratio(rateOf('sip-server-edge-x2', transport, scenario), rateOf('kamailio', transport, scenario)),
    // Either side never failed: the ratio is not a measured one.
    bounded: ['sip-server', 'sip-server+hep', 'sip-server-x2', 'sip-server-edge-x2', 'kamailio', 'direct'].filter((t) => capped(t, transport, scenario)),
  })),
);
const ratioCell = (x, v, other) => (v === null ? '–' : x.bounded.includes('sip-server') || x.bounded.includes(other) ? `${v} (bound)` : String(v));
/** The cost of HEP export, when sip-server+hep ran: rates and CPU beside sip-server's, and HEP packets per call. */
const hepRows = ratios
  .filter((x) => resultOf('sip-server+hep', x.transport, x.scenario))
  .map((x) => {
    const hep = resultOf('sip-server+hep', x.transport, x.scenario)?.atBest;
    const perCall = hep?.hepPackets !== undefined && hep.calls ? Math.round((hep.hepPackets / hep.calls) * 10) / 10 : '–';
    // Side by side at the same offered rate: the highest that both ran and passed.
    const passedRates = (t) => new Set(resultOf(t, x.transport, x.scenario)?.steps.filter((s) => s.failedConditions.length === 0).map((s) => s.rate));
    const plainRates = passedRates('sip-server');
    const common = Math.max(0, ...[...passedRates('sip-server+hep')].filter((r) => plainRates.has(r)));
    const at = (t) => resultOf(t, x.transport, x.scenario)?.steps.find((s) => s.rate === common);
    return `| ${x.transport.toUpperCase()} | ${x.scenario} | ${shown('sip-server', x.transport, x.scenario)} | ${shown('sip-server+hep', x.transport, x.scenario)} | ${ratioCell(x, x.hepVsPlain, 'sip-server+hep')} | ${common || '–'} | ${at('sip-server')?.cpuPct ?? '–'} | ${at('sip-server+hep')?.cpuPct ?? '–'} | ${at('sip-server+hep')?.sinkCpuPct ?? '–'} | ${perCall} |`;
  });
/** Two independent instances beside one, when sip-server-x2 ran: the most that two workers could give here. */
const laneRows = ratios
  .filter((x) => resultOf('sip-server-x2', x.transport, x.scenario))
  .map((x) => {
    const one = resultOf('sip-server', x.transport, x.scenario)?.atBest;
    const two = resultOf('sip-server-x2', x.transport, x.scenario)?.atBest;
    return `| ${x.transport.toUpperCase()} | ${x.scenario} | ${shown('sip-server', x.transport, x.scenario)} | ${shown('sip-server-x2', x.transport, x.scenario)} | ${ratioCell(x, x.twoVsOne, 'sip-server-x2')} | ${one?.cpuPct ?? '–'} @ ${one?.rate ?? '–'}/s | ${two?.cpuPct ?? '–'} @ ${two?.rate ?? '–'}/s |`;
  });
/** Kamailio in front of two instances (docs/deployment.md), when sip-server-edge-x2 ran. */
const edgeRows = ratios
  .filter((x) => resultOf('sip-server-edge-x2', x.transport, x.scenario))
  .map((x) => {
    const one = resultOf('sip-server', x.transport, x.scenario)?.atBest;
    const edge = resultOf('sip-server-edge-x2', x.transport, x.scenario)?.atBest;
    return `| ${x.transport.toUpperCase()} | ${x.scenario} | ${shown('sip-server', x.transport, x.scenario)} | ${shown('sip-server-edge-x2', x.transport, x.scenario)} | ${ratioCell(x, x.edgeVsOne, 'sip-server-edge-x2')} | ${shown('kamailio', x.transport, x.scenario)} | ${ratioCell(x, x.edgeVsKamailio, 'kamailio')} | ${one?.cpuPct ?? '–'} @ ${one?.rate ?? '–'}/s | ${edge?.cpuPct ?? '–'} @ ${edge?.rate ?? '–'}/s |`;
  });

const rows = results.map((r) => {
  const b = r.atBest;
  return `| ${r.target} | ${r.transport.toUpperCase()} | ${r.scenario} | ${shown(r.target, r.transport, r.scenario)} | ${r.firstFailingRate ?? '–'} | ${r.firstFailure?.join('; ') ?? '–'} | ${b?.cpuPct ?? '–'} | ${b?.rssMB ?? '–'} | ${b?.setupMs.median ?? '–'} | ${b?.setupMs.p99 ?? '–'} |`;
});
const stepRows = results.flatMap((r) =>
  r.steps.map(
    (s) =>
      `| ${r.target} | ${r.transport.toUpperCase()} | ${r.scenario} | ${s.rate} | ${s.failedConditions.length ? 'fail' : 'pass'} | ${s.successful ?? '–'} / ${s.calls} | ${s.failed ?? '–'} | ${s.retransUac ?? '–'} / ${s.retransUas ?? '–'} | ${s.achievedCps ?? '–'} | ${s.elapsedS ?? '–'} / ${s.nominalS ?? '–'} | ${s.wallS} |`,
  ),
);
const criterionProse = legacy
  ? `Reported again from steps saved before the strict criterion (issue 14): a step passed when no call failed and SIPp was done within the step length + 2 s, so steps with retransmissions or well under the offered rate passed.`
  : `A step (a fixed-rate trial of ${seconds} s) passes only when all of these hold: **calls**, every call placed succeeded at the UAC (SIPp's "Successful call" = calls, 0 failed); **retransmissions**, none on either SIPp side (SIPp's Retransmissions(C): its own timer retransmissions and its answers to the peer's retransmitted requests; the UAS is stopped gracefully after the UAC has finished, so its figure is final); **time**, the last call done (SIPp's elapsed time) within ${TIME_SLACK_S} s of the nominal length, calls ÷ rate plus the scenario's hold; **rate**, at least ${MIN_RATE_SHARE * 100} % of the offered rate achieved, counted as 200s received per second from the first call's to the last's. "Why the first failing rate failed" lists the conditions it missed. Over TCP SIPp never retransmits and does not look for the peer's retransmissions, so there the retransmission condition is 0 by construction.`;
const markdown = [
  `# Calls per second — ${new Date().toISOString().slice(0, 10)}`,
  '',
  `SIPp UAC → target → SIPp UAS (registered as DN 1002), one connection each way on TCP; ${seconds} s per step; all processes on the same 2 cores. Node ${process.version}. Scenarios: ${distinct('scenario')
    .map((sc) => `**${sc}**, ${SCENARIOS[sc]?.what ?? sc}`)
    .join('; ')}.`,
  '',
  `| target | transport | scenario | highest passing calls/s | first failing rate | why the first failing rate failed | CPU % at the passing rate | RSS MB | setup median ms | setup p99 ms |`,
  '|---|---|---|---|---|---|---|---|---|---|',
  ...rows,
  '',
  '| transport | scenario | sip-server | kamailio | direct | sip-server ÷ kamailio | sip-server ÷ direct |',
  '|---|---|---|---|---|---|---|',
  ...ratios.map(
    (x) =>
      `| ${x.transport.toUpperCase()} | ${x.scenario} | ${shown('sip-server', x.transport, x.scenario)} | ${shown('kamailio', x.transport, x.scenario)} | ${shown('direct', x.transport, x.scenario)} | ${ratioCell(x, x.vsKamailio, 'kamailio')} | ${ratioCell(x, x.vsCeiling, 'direct')} |`,
  ),
  '',
  ...(hepRows.length > 0
    ? [
        '| transport | scenario | sip-server | sip-server+hep | sip-server+hep ÷ sip-server | at calls/s | sip-server CPU % | sip-server+hep CPU % | HEP sink CPU % | HEP packets per call |',
        '|---|---|---|---|---|---|---|---|---|---|',
        ...hepRows,
        '',
        'sip-server+hep: the same server with `hep-address` set, sending a HEPv3 packet per SIP message in and out (from a thread of its own) to a UDP sink in the bench script, which runs on the same cores: its CPU is not the target\'s, but it competes with it. The CPU columns compare the two at the highest rate both passed.',
        '',
      ]
    : []),
  ...(laneRows.length > 0
    ? [
        '| transport | scenario | sip-server | sip-server-x2 | sip-server-x2 ÷ sip-server | sip-server CPU % at its passing rate | sip-server-x2 CPU % (both) at its passing rate |',
        '|---|---|---|---|---|---|---|',
        ...laneRows,
        '',
        'sip-server-x2: two independent servers, each with its own SIPp UAC and UAS at half the rate, at once on the same 2 cores (a step passes when both halves pass): the most that sharding calls over two worker processes could give on this machine, with nothing spent on sharing them out.',
        '',
      ]
    : []),
  ...(edgeRows.length > 0
    ? [
        '| transport | scenario | sip-server | sip-server-edge-x2 | edge-x2 ÷ sip-server | kamailio | edge-x2 ÷ kamailio | sip-server CPU % at its passing rate | edge-x2 CPU % (Kamailio + both) at its passing rate |',
        '|---|---|---|---|---|---|---|---|---|',
        ...edgeRows,
        '',
        'sip-server-edge-x2: Kamailio with deploy/kamailio/kamailio.cfg in front of two servers, sharing the calls out by Call-ID (dispatcher), the caller\'s dialog record-routed through it; DN 1002 a fixed contact (the UAS) on both; all on the same 2 cores as SIPp.',
        '',
      ]
    : []),
  '"≥ N": no step failed up to --max; a ratio with such a figure on either side is marked "(bound)", not a measurement.',
  '',
  criterionProse,
  '',
  `CPU is the target process (with its children, for Kamailio) over the step, 100 % = one core; RSS its peak (summed over Kamailio's processes, shared memory counted in each). Setup latency is measured at the UAC from INVITE sent to 200 received, in whole milliseconds (SIPp's response-time trace): 0 means under 1 ms. Every step starts a fresh target and UAS${warmupSeconds > 0 ? `, and first runs ${warmupSeconds} s of calls at ${WARMUP_RATE}/s (or the step's rate, if lower), not measured: a Node server compiles its hot path in its first seconds (cold, the server's receive queue grew to 5 MB in the first 3 s at 2,000 calls/s over UDP), and an operator's server has been up; the UAS's retransmission count includes them` : ''}. \`direct\` (SIPp to SIPp) is the harness's ceiling.`,
  '',
  ...(legacy
    ? []
    : [
        '## Every step',
        '',
        '| target | transport | scenario | offered calls/s | verdict | successful / calls | failed | retransmissions UAC / UAS | achieved calls/s | last call done s / nominal s | wall s |',
        '|---|---|---|---|---|---|---|---|---|---|---|',
        ...stepRows,
        '',
      ]),
  '{{chart}}',
  '',
].join('\n');
const svg = lineChart({
  title: 'Failed calls by offered rate',
  xLabel: 'offered calls/s',
  yLabel: 'failed calls (% of the step)',
  series: results.map((r) => ({ name: `${r.target} ${r.transport.toUpperCase()} ${r.scenario}`, dashed: r.transport === 'tcp', points: r.steps.map((s) => [s.rate, (100 * (s.failed ?? s.calls)) / Math.max(1, s.calls)]) })),
});
console.log(markdown.replace('{{chart}}', ''));
if (values['no-write']) {
  console.log('--no-write: nothing written to bench/results');
} else {
  const paths = writeReport('calls', { data: { secondsPerStep: seconds, warmupSeconds, criterion: legacy ? 'legacy' : 'strict', results, ratios }, markdown, svg });
  console.log(`written ${paths.json}, ${paths.md}, ${paths.svg}`);
}
