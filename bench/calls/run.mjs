#!/usr/bin/env node
// bench/calls (issue 6): SIPp UAC → X → SIPp UAS (registered as a DN), a basic call with a
// 200 ms hold, over UDP and TCP (one connection each way), where X is
//   direct      nothing: SIPp to SIPp, the harness's ceiling;
//   sip-server  this server (a B2BUA: two dialogs per call);
//   kamailio    Kamailio 5.6 as a transaction-stateful proxy with an in-memory registrar
//               (bench/kamailio/proxy.cfg; Debian package `kamailio`, installed if missing).
// For each, the call rate is stepped up (doubling, then two steps of refinement between the
// last rate that passed and the first that failed), each step at least --seconds long, and the
// highest rate with zero failed calls is kept, with the CPU and RSS of X and the call-setup
// latency (INVITE sent → 200 received at the UAC, SIPp's response-time trace: median, p99).
// Writes bench/results/<date>-calls.{json,md,svg}.
//
//   npm run bench:calls -- [--seconds 20] [--transports udp,tcp] [--targets direct,sip-server,kamailio]
//   node bench/calls/run.mjs --from-json bench/results/<date>-calls.json   (report again, no measuring)
import { execFileSync, spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { lineChart, median, percentile, root, writeReport } from '../report/report.mjs';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '20' },
    start: { type: 'string', default: '250' },
    max: { type: 'string', default: '32000' },
    transports: { type: 'string', default: 'udp,tcp' },
    targets: { type: 'string', default: 'direct,sip-server,kamailio' },
    'from-json': { type: 'string' },
  },
});
let seconds = Number(values.seconds);
const TICKS = 100; // USER_HZ

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

async function startSipServer(port) {
  const dir = mkdtempSync(join(tmpdir(), 'bench-calls-'));
  const config = join(dir, 'config.yaml');
  writeFileSync(
    config,
    `TServer:\n  sip-port: ${port}\n  http-port: 0\n  store: "sqlite:${join(dir, 'state.db')}"\nlog:\n  level: warn\ndns:\n  "1002": { type: extension, contact: "*" }\n`,
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

/** One step: `rate` calls/s for `seconds`, with the CPU, RSS and latency seen. */
async function step({ transport, targetPort, dn, rate, pid }) {
  const sippT = transport === 'tcp' ? 't1' : 'u1';
  const calls = rate * seconds;
  const dir = mkdtempSync(join(tmpdir(), 'bench-step-'));
  const pids = pid ? tree(pid) : [];
  const cpu0 = cpuTicks(pids);
  let rssMax = rssKb(pids);
  const sampler = setInterval(() => (rssMax = Math.max(rssMax, rssKb(pid ? tree(pid) : []))), 500);
  const t0 = Date.now();
  const r = await run(
    'sipp',
    [
      '-sf', join(root, 'test/sipp/uac-basic.xml'), '-t', sippT, '-i', '127.0.0.1', '-s', dn,
      '-r', String(rate), '-m', String(calls), '-l', String(Math.max(100, rate * 2)), '-timeout', `${seconds * 3 + 30}s`, '-timeout_error',
      '-nostdin', '-buff_size', '4194304', '-max_socket', '60000', '-trace_rtt', '-rtt_freq', '100', `127.0.0.1:${targetPort}`,
    ],
    dir,
  );
  const wallS = (Date.now() - t0) / 1000;
  clearInterval(sampler);
  const cpuPct = pid ? (100 * (cpuTicks(pid ? tree(pid) : []) - cpu0)) / TICKS / wallS : null;
  const failed = Number(/Failed call\s*\|\s*\d+\s*\|\s*(\d+)/.exec(r.out)?.[1] ?? (r.code === 0 ? 0 : calls));
  const rttFile = readdirSync(dir).find((f) => f.endsWith('_rtt.csv'));
  const rtts = rttFile
    ? readFileSync(join(dir, rttFile), 'utf8')
        .split('\n')
        .slice(1)
        .map((l) => Number(l.split(';')[1]))
        .filter((v) => Number.isFinite(v))
    : [];
  return {
    rate,
    calls,
    failed,
    sippExit: r.code,
    wallS,
    achievedCps: Math.round(calls / wallS),
    cpuPct: cpuPct === null ? null : Math.round(cpuPct),
    rssMB: pid ? Math.round(rssMax / 1024) : null,
    setupMs: { median: median(rtts), p99: percentile(rtts, 99), samples: rtts.length },
  };
}

/**
 * A step passes when no call failed and SIPp kept the offered rate: it placed all its calls
 * within 2 s of the step's length (start, the last calls' 200 ms hold and teardown take well
 * under that). SIPp's concurrency limit otherwise turns overload into slow calls, not failed ones.
 */
function passed(s) {
  return s.failed === 0 && s.sippExit === 0 && s.wallS <= seconds + 2;
}

/** A fresh target and UAS for each step, so that one overloaded step cannot spoil the next. */
async function freshStep(target, transport, rate) {
  const dn = '1002';
  const uasPort = await freePort();
  let proc;
  let targetPort = uasPort;
  if (target !== 'direct') {
    targetPort = await freePort();
    proc = target === 'kamailio' ? await startKamailio(targetPort) : await startSipServer(targetPort);
    await register(targetPort, dn, uasPort, transport);
  }
  const uas = spawn('sipp', ['-sf', join(root, 'test/sipp/uas-basic.xml'), '-t', transport === 'tcp' ? 't1' : 'u1', '-i', '127.0.0.1', '-p', String(uasPort), '-nostdin', '-buff_size', '4194304', '-max_socket', '60000'], { stdio: 'ignore', cwd: tmpdir() });
  await sleep(300);
  try {
    return await step({ transport, targetPort, dn, rate, pid: proc?.pid });
  } finally {
    uas.kill('SIGKILL');
    proc?.stop();
    await sleep(500);
  }
}

async function measure(target, transport) {
  const steps = [];
  const tryRate = async (rate) => {
    const s = await freshStep(target, transport, rate);
    steps.push(s);
    console.log(`  ${target} ${transport.toUpperCase()} ${rate}/s: ${s.failed} failed, ${s.achievedCps}/s achieved, CPU ${s.cpuPct ?? '–'} %, RSS ${s.rssMB ?? '–'} MB, setup median ${s.setupMs.median ?? '–'} ms p99 ${s.setupMs.p99 ?? '–'} ms`);
    return passed(s);
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
  return summarize(target, transport, steps);
}

/** The highest passing rate below the first failing one, from the steps measured. */
function summarize(target, transport, steps) {
  const sorted = [...steps].sort((a, b) => a.rate - b.rate);
  const firstFail = sorted.find((s) => !passed(s));
  const best = sorted.filter((s) => passed(s) && (!firstFail || s.rate < firstFail.rate)).at(-1) ?? null;
  return { target, transport, highestZeroFailureRate: best?.rate ?? 0, firstFailingRate: firstFail?.rate ?? null, atBest: best, steps: sorted };
}

const results = [];
if (values['from-json']) {
  // Report again from a run's saved steps (e.g. after a change of the pass rule).
  const saved = JSON.parse(readFileSync(values['from-json'], 'utf8'));
  seconds = saved.secondsPerStep;
  for (const r of saved.results) results.push(summarize(r.target, r.transport, r.steps));
} else {
  for (const transport of values.transports.split(',')) {
    for (const target of values.targets.split(',')) {
      console.log(`${target} over ${transport.toUpperCase()}:`);
      results.push(await measure(target, transport));
    }
  }
}

const rateOf = (target, transport) => results.find((r) => r.target === target && r.transport === transport)?.highestZeroFailureRate ?? null;
const ratio = (a, b) => (a && b ? Math.round((a / b) * 100) / 100 : null);
const ratios = values.transports.split(',').map((transport) => ({
  transport,
  sipServer: rateOf('sip-server', transport),
  kamailio: rateOf('kamailio', transport),
  direct: rateOf('direct', transport),
  vsKamailio: ratio(rateOf('sip-server', transport), rateOf('kamailio', transport)),
  vsCeiling: ratio(rateOf('sip-server', transport), rateOf('direct', transport)),
}));

const rows = results.map((r) => {
  const b = r.atBest;
  return `| ${r.target} | ${r.transport.toUpperCase()} | ${r.highestZeroFailureRate} | ${r.firstFailingRate ?? '–'} | ${b?.cpuPct ?? '–'} | ${b?.rssMB ?? '–'} | ${b?.setupMs.median ?? '–'} | ${b?.setupMs.p99 ?? '–'} |`;
});
const markdown = [
  `# Calls per second — ${new Date().toISOString().slice(0, 10)}`,
  '',
  `SIPp UAC → target → SIPp UAS (registered), basic call with a 200 ms hold, one connection each way on TCP; ${seconds} s per step; all processes on the same 2 cores. Node ${process.version}.`,
  '',
  '| target | transport | highest zero-failure calls/s | first failing rate | CPU % at that rate | RSS MB | setup median ms | setup p99 ms |',
  '|---|---|---|---|---|---|---|---|',
  ...rows,
  '',
  '| transport | sip-server | kamailio | direct | sip-server ÷ kamailio | sip-server ÷ direct |',
  '|---|---|---|---|---|---|',
  ...ratios.map((x) => `| ${x.transport.toUpperCase()} | ${x.sipServer ?? '–'} | ${x.kamailio ?? '–'} | ${x.direct ?? '–'} | ${x.vsKamailio ?? '–'} | ${x.vsCeiling ?? '–'} |`),
  '',
  'A step passes when no call failed and SIPp kept the offered rate (all its calls done within the step length + 2 s). CPU is the target process (with its children, for Kamailio) over the step, 100 % = one core; RSS its peak (summed over Kamailio\'s processes, shared memory counted in each). Setup latency is measured at the UAC from INVITE sent to 200 received, in whole milliseconds (SIPp\'s response-time trace): 0 means under 1 ms. Every step starts a fresh target and UAS.',
  '',
  '{{chart}}',
  '',
].join('\n');
const svg = lineChart({
  title: 'Failed calls by offered rate',
  xLabel: 'offered calls/s',
  yLabel: 'failed calls (% of the step)',
  series: results.map((r) => ({ name: `${r.target} ${r.transport.toUpperCase()}`, dashed: r.transport === 'tcp', points: r.steps.map((s) => [s.rate, (100 * s.failed) / Math.max(1, s.calls)]) })),
});
const paths = writeReport('calls', { data: { secondsPerStep: seconds, results, ratios }, markdown, svg });
console.log(markdown.replace('{{chart}}', ''));
console.log(`written ${paths.json}, ${paths.md}, ${paths.svg}`);
