import { execFileSync, fork, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { lineChart, median, percentile, root, writeReport } from '../report/report.mjs';
import { clearRules, dropServerPort, faultNet } from '../../test/support/netns.js';
import { startServer } from '../../test/support/server-process.js';

/*
 * bench/connections (issue 6): N endpoints, each registered over its own TCP connection with
 * keep-alive on, held by the server — then by Kamailio (registrar + usrloc in memory) — in
 * the server namespace. Reports the registration rate, memory per connection (PSS of every
 * process of the target, after minus before, over N; the server's heap too) and, after one
 * iptables rule pair in the endpoints' namespace drops every flow at once, how long until the
 * kernel and the server have found each one dead, and the server's event-loop lag meanwhile.
 * Endpoints are client processes (bench/connections/client.mjs), each with its own source
 * address and at most PER_CLIENT connections (one process holds ≤ 19.9k open files here).
 * Writes bench/results/<date>-connections.{json,md,svg}.
 */

const net = faultNet();
const NS = (process.env.CONN_N ?? '10000,50000,100000').split(',').map(Number);
/**
 * Kamailio's tcp_main process holds every connection itself, so it cannot pass this
 * machine's 20,000 open files per process: it runs at 10,000 and just past that limit.
 */
const KAMAILIO_NS = (process.env.CONN_KAMAILIO_N ?? '10000,21000').split(',').map(Number);
const TARGETS = (process.env.CONN_TARGETS ?? 'sip-server,kamailio').split(',');
const PER_CLIENT = 16_000;
/** Connections per source address (each client process spreads over several). */
const PER_ADDRESS = 4_000;
let roundNo = 0;
const WINDOW = 50;
/** Per-socket keep-alive for both targets: idle 10 s, then 2 probes 1 s apart (bound 12 s). */
const KA = { idle: 10, intvl: 1, cnt: 2 };
const BOUND_MS = (KA.idle + KA.intvl * KA.cnt) * 1000;
/**
 * Endpoints registered before the "before" memory reading, so one-time costs (code warmed up,
 * a young generation or a shared-memory pool touched for the first time) are not counted per
 * connection: bytes per connection is the cost of each further one.
 */
const WARMUP = 1000;
/** Open files one process may have here; the server gets a worker per this many connections less a reserve. */
const PER_WORKER = 19_000;

type Stat = number | null;
interface Round {
  target: string;
  n: number;
  workers?: number;
  registered: number;
  failed: number;
  failures: Record<string, number>;
  registerSeconds: number;
  registrationsPerSecond: number;
  pssBeforeMB: number;
  pssAfterMB: number;
  bytesPerConnection: number | null;
  heapUsedBeforeMB?: number;
  heapUsedAfterMB?: number;
  heapBytesPerConnection?: number | null;
  processes: number;
  /** PSS of each process after registration, MB, by pid order (for the server: the server first, then its workers). */
  perProcessMB: number[];
  kernelEstablishedBeforeDrop: number;
  /** Drop → no established connection left in the server namespace (kernel), ms; polled every 250 ms. */
  kernelAllDeadMs: Stat;
  /** Drop → the server logged each connection dead (application), ms. */
  appDetectedMs?: { first: Stat; median: Stat; p99: Stat; last: Stat; count: number };
  /** /health answer time while they die, ms (every 20 ms from the drop until all are found). */
  healthMs?: { baselineMedian: Stat; median: Stat; p99: Stat; max: Stat };
  /** Node's own event-loop delay over the same window (prom-client nodejs_eventloop_lag_max_seconds), ms. */
  eventLoopLagMaxMs?: Stat;
}

const rounds: Round[] = [];
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const inSrv = (cmd: string, args: string[]): string => execFileSync('ip', ['netns', 'exec', net.srv, cmd, ...args], { encoding: 'utf8' });

/**
 * The endpoint veth (we run inside the endpoints' namespace) and `k` source addresses on it,
 * new ones each round (an earlier round's closed connections may still hold ports).
 */
function sourceAddresses(k: number): string[] {
  const line = execFileSync('ip', ['-o', '-4', 'addr', 'show'], { encoding: 'utf8' })
    .split('\n')
    .find((l) => l.includes(` ${net.epAddr}/`));
  const dev = line?.split(/\s+/)[1];
  if (!dev) throw new Error(`no device with ${net.epAddr}`);
  const prefix = net.epAddr.split('.').slice(0, 3).join('.');
  const out: string[] = [];
  const base = 10 + (roundNo++ % 8) * 30;
  for (let i = 0; i < k; i++) {
    const addr = `${prefix}.${base + i}`;
    try {
      execFileSync('ip', ['addr', 'add', `${addr}/24`, 'dev', dev], { stdio: 'ignore' });
    } catch {
      /* already there from an earlier round */
    }
    out.push(addr);
  }
  return out;
}

/** Proportional set size of every process in the server namespace, in bytes (shared pages split among them). */
function namespacePss(): { bytes: number; processes: number; perProcessMB: number[] } {
  const pids = execFileSync('ip', ['netns', 'pids', net.srv], { encoding: 'utf8' }).split('\n').filter(Boolean).map(Number).sort((a, b) => a - b);
  const perProcess: number[] = [];
  for (const pid of pids) {
    try {
      const m = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
      perProcess.push(Number(m?.[1] ?? 0) * 1024);
    } catch {
      /* exited */
    }
  }
  const bytes = perProcess.reduce((a, b) => a + b, 0);
  return { bytes, processes: perProcess.length, perProcessMB: perProcess.map(mb) };
}

/** Established connections on the SIP port in the server namespace (not the control API's). */
function establishedInServerNs(): number {
  return Number(inSrv('sh', ['-c', "ss -tnH state established '( sport = :5060 )' | wc -l"]).trim());
}

interface ClientResult {
  registered: number;
  failed: number;
  failures: Record<string, number>;
  firstSentAt: number;
  lastOkAt: number;
}

/** Registers n endpoints as DNs first…first+n-1 from client processes; resolves when every REGISTER is answered or failed. */
async function registerAll(n: number, first: number): Promise<{ clients: ChildProcess[]; results: ClientResult[] }> {
  const k = Math.ceil(n / PER_CLIENT);
  const perClient = Math.ceil(PER_CLIENT / PER_ADDRESS);
  const sources = sourceAddresses(k * perClient);
  const clients: ChildProcess[] = [];
  const done: Promise<ClientResult>[] = [];
  for (let i = 0; i < k; i++) {
    const count = Math.min(PER_CLIENT, n - i * PER_CLIENT);
    const c = fork(join(root, 'bench/connections/client.mjs'), [net.srvAddr, '5060', sources.slice(i * perClient, (i + 1) * perClient).join(','), String(first + i * PER_CLIENT), String(count), String(WINDOW)], { stdio: 'inherit' });
    clients.push(c);
    await new Promise<void>((r) => c.once('message', () => r()));
    done.push(
      new Promise((resolve) =>
        c.on('message', (m: { t: string } & ClientResult) => {
          if (m.t === 'done') resolve(m);
        }),
      ),
    );
  }
  for (const c of clients) c.send({ t: 'start' });
  const results = await Promise.all(done);
  return { clients, results };
}

function closeClients(clients: ChildProcess[]): void {
  for (const c of clients) {
    if (c.connected) c.send({ t: 'close' });
  }
}

/** TCP sockets in use in the server namespace (/proc/net/sockstat: cheap at any N, unlike listing them). */
function tcpInUse(): number {
  return Number(/TCP: inuse (\d+)/.exec(inSrv('cat', ['/proc/net/sockstat']))?.[1] ?? -1);
}

/**
 * Polls the server namespace every 100 ms until no established connection on the SIP port is
 * left; ms after `from`. `others` = sockets in use that are not SIP connections (listeners,
 * the control API's), counted before the drop. Listing 100,000 sockets with ss takes a good
 * part of a core, so it is only asked to confirm once the count says all are gone.
 */
async function kernelAllDead(from: number, limitMs: number, others: number): Promise<number | null> {
  while (Date.now() - from < limitMs) {
    if (tcpInUse() - others <= 5 && establishedInServerNs() === 0) return Date.now() - from;
    await sleep(100);
  }
  return null;
}

const dnsFor = (n: number, first: number): Record<string, unknown> => Object.fromEntries(Array.from({ length: n }, (_, i) => [String(first + i), { type: 'extension', contact: '*' }]));

function summarizeRegistration(results: ClientResult[]): Pick<Round, 'registered' | 'failed' | 'failures' | 'registerSeconds' | 'registrationsPerSecond'> {
  const registered = results.reduce((s, r) => s + r.registered, 0);
  const failed = results.reduce((s, r) => s + r.failed, 0);
  const failures: Record<string, number> = {};
  for (const r of results) for (const [k, v] of Object.entries(r.failures)) failures[k] = (failures[k] ?? 0) + v;
  const start = Math.min(...results.map((r) => r.firstSentAt));
  const end = Math.max(...results.map((r) => r.lastOkAt));
  const registerSeconds = (end - start) / 1000;
  return { registered, failed, failures, registerSeconds, registrationsPerSecond: Math.round(registered / registerSeconds) };
}

async function metric(api: string, token: string, name: string): Promise<number> {
  const text = await (await fetch(`${api}/metrics`, { headers: { authorization: `Bearer ${token}` } })).text();
  // Summed over its label sets.
  const values = [...text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'gm'))].map((m) => Number(m[1]));
  return values.length ? values.reduce((a, b) => a + b, 0) : NaN;
}

async function sipServerRound(n: number): Promise<Round> {
  const first = 100_000;
  const held = n + WARMUP;
  const workers = held > PER_WORKER ? Math.ceil(held / PER_WORKER) : 0;
  const server = await startServer({
    netns: { name: net.srv, address: net.srvAddr },
    logLevel: 'warn',
    tserver: {
      'sip-enable-tcp-keep-alive': true,
      'sip-tcp-keep-alive-idle': KA.idle,
      'sip-tcp-keep-alive-interval': KA.intvl,
      'sip-tcp-keep-alive-count': KA.cnt,
      'sip-tcp-workers': workers,
      'sip-max-connections': Math.max(100_000, held + 1000),
    },
    dns: { ...dnsFor(WARMUP, first - WARMUP), ...dnsFor(n, first) },
  });
  const token = server.token ?? '';
  const auth = { headers: { authorization: `Bearer ${token}` } };
  let clients: ChildProcess[] = [];
  try {
    const warm = await registerAll(WARMUP, first - WARMUP);
    clients = warm.clients;
    await sleep(2000);
    const before = namespacePss();
    const heapBefore = await metric(server.api, token, 'nodejs_heap_size_used_bytes');
    const reg = await registerAll(n, first);
    clients = [...warm.clients, ...reg.clients];
    const summary = summarizeRegistration(reg.results);
    await sleep(3000);
    const after = namespacePss();
    const heapAfter = await metric(server.api, token, 'nodejs_heap_size_used_bytes');
    expect(await metric(server.api, token, 'sip_registrations')).toBe(summary.registered + WARMUP);
    const established = establishedInServerNs();
    const others = tcpInUse() - established;

    // Drop every flow; probe /health and wait for the kernel and the server to find all dead.
    const mark = server.output().length;
    const baseline: number[] = [];
    for (let i = 0; i < 20; i++) {
      const t = performance.now();
      await fetch(`${server.api}/health`, auth);
      baseline.push(performance.now() - t);
      await sleep(20);
    }
    await metric(server.api, token, 'nodejs_eventloop_lag_max_seconds'); // resets the window
    const dropped = dropServerPort(net, 5060);
    const health: number[] = [];
    let probing = true;
    const probe = (async () => {
      while (probing) {
        const t = performance.now();
        await fetch(`${server.api}/health`, auth);
        health.push(performance.now() - t);
        await sleep(20);
      }
    })();
    const kernelMs = await kernelAllDead(dropped, BOUND_MS + 60_000, others);
    const appTimes = (): number[] =>
      server
        .output()
        .slice(mark)
        .split('\n')
        .filter((l) => l.includes('"connection died"'))
        .map((l) => (JSON.parse(l) as { detectedAt: number }).detectedAt - dropped);
    const until = Date.now() + 60_000;
    while (appTimes().length < summary.registered + WARMUP && Date.now() < until) await sleep(250);
    probing = false;
    await probe;
    const lagMax = await metric(server.api, token, 'nodejs_eventloop_lag_max_seconds');
    const times = appTimes().sort((a, b) => a - b);
    return {
      target: 'sip-server',
      n,
      workers,
      ...summary,
      pssBeforeMB: mb(before.bytes),
      pssAfterMB: mb(after.bytes),
      bytesPerConnection: summary.registered ? Math.round((after.bytes - before.bytes) / summary.registered) : null,
      heapUsedBeforeMB: mb(heapBefore),
      heapUsedAfterMB: mb(heapAfter),
      heapBytesPerConnection: summary.registered ? Math.round((heapAfter - heapBefore) / summary.registered) : null,
      processes: after.processes,
      perProcessMB: after.perProcessMB,
      kernelEstablishedBeforeDrop: established,
      kernelAllDeadMs: kernelMs,
      appDetectedMs: { first: times[0] ?? null, median: median(times), p99: percentile(times, 99), last: times.at(-1) ?? null, count: times.length },
      healthMs: { baselineMedian: round1(median(baseline)), median: round1(median(health)), p99: round1(percentile(health, 99)), max: round1(health.length ? Math.max(...health) : null) },
      eventLoopLagMaxMs: round1(lagMax * 1000),
    };
  } finally {
    // Rules first: the clients' FINs then reach the server namespace and are answered, instead
    // of leaving connections retrying their FIN on ports the next round wants.
    clearRules();
    closeClients(clients);
    await server.stop();
  }
}

async function kamailioRound(n: number): Promise<Round> {
  if (!existsSync('/usr/sbin/kamailio')) {
    execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'kamailio'], { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  }
  const dir = mkdtempSync(join(tmpdir(), 'bench-kamailio-'));
  const cfg = join(dir, 'registrar.cfg');
  const text = readFileSync(join(root, 'bench/kamailio/registrar.cfg'), 'utf8')
    .replaceAll('__ADDR__', net.srvAddr)
    .replaceAll('__PORT__', '5060')
    .replaceAll('__IDLE__', String(KA.idle))
    .replaceAll('__INTVL__', String(KA.intvl))
    .replaceAll('__CNT__', String(KA.cnt));
  writeFileSync(cfg, text);
  let log = '';
  const proc = spawn('ip', ['netns', 'exec', net.srv, 'kamailio', '-f', cfg, '-DD', '-E', '-x', 'tlsf', '-X', 'tlsf', '-m', '1024', '-M', '64', '-Y', dir], { stdio: ['ignore', 'ignore', 'pipe'] });
  proc.stderr?.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-20_000)));
  let clients: ChildProcess[] = [];
  try {
    const up = Date.now() + 10_000;
    while (!inSrv('ss', ['-tlnH']).includes(`${net.srvAddr}:5060`)) {
      if (Date.now() > up) throw new Error(`Kamailio did not start:\n${log}`);
      await sleep(100);
    }
    const warm = await registerAll(WARMUP, 100_000 - WARMUP);
    clients = warm.clients;
    await sleep(2000);
    const before = namespacePss();
    const reg = await registerAll(n, 100_000);
    clients = [...warm.clients, ...reg.clients];
    const summary = summarizeRegistration(reg.results);
    await sleep(3000);
    const after = namespacePss();
    const established = establishedInServerNs();
    const others = tcpInUse() - established;
    const dropped = dropServerPort(net, 5060);
    const kernelMs = await kernelAllDead(dropped, BOUND_MS + 60_000, others);
    return {
      target: 'kamailio',
      n,
      ...summary,
      pssBeforeMB: mb(before.bytes),
      pssAfterMB: mb(after.bytes),
      bytesPerConnection: summary.registered ? Math.round((after.bytes - before.bytes) / summary.registered) : null,
      processes: after.processes,
      perProcessMB: after.perProcessMB,
      kernelEstablishedBeforeDrop: established,
      kernelAllDeadMs: kernelMs,
    };
  } finally {
    clearRules();
    closeClients(clients);
    proc.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 500));
    try {
      execFileSync('ip', ['netns', 'exec', net.srv, 'pkill', '-9', 'kamailio'], { stdio: 'ignore' });
    } catch {
      /* gone */
    }
  }
}

const mb = (bytes: number): number => Math.round((bytes / 1048576) * 10) / 10;
const round1 = (x: number | null): number | null => (x === null ? null : Math.round(x * 10) / 10);

for (const target of TARGETS) {
  for (const n of target === 'kamailio' ? KAMAILIO_NS : NS) {
    it(`${target}: ${n} TCP endpoints registered, then every flow dropped`, async () => {
      const r = target === 'kamailio' ? await kamailioRound(n) : await sipServerRound(n);
      rounds.push(r);
      console.log(JSON.stringify(r));
      if (target === 'sip-server') expect(r.registered).toBe(n);
    });
  }
}

beforeAll(() => {
  // This namespace is the bench's own: a wide ephemeral port range for the endpoints.
  writeFileSync('/proc/sys/net/ipv4/ip_local_port_range', '10000 65000');
});

afterAll(() => {
  clearRules();
  if (rounds.length === 0) return;
  const of = (target: string): Round[] => rounds.filter((r) => r.target === target);
  const kam = (n: number): Round | undefined => of('kamailio').find((r) => r.n === n);
  const ratio = (a: number | null | undefined, b: number | null | undefined): string => (a && b ? (a / b).toFixed(2) : '–');
  const rows = rounds.map(
    (r) =>
      `| ${r.target} | ${r.n} | ${r.workers ?? '–'} | ${r.registered} | ${r.failed}${r.failed ? ` (${Object.entries(r.failures).map(([k, v]) => `${v}× ${k}`).join(', ')})` : ''} | ${r.registrationsPerSecond} | ${r.pssBeforeMB} → ${r.pssAfterMB} | ${r.bytesPerConnection ?? '–'} | ${r.heapBytesPerConnection ?? '–'} | ${r.kernelAllDeadMs ?? '–'} | ${r.appDetectedMs ? `${r.appDetectedMs.median} / ${r.appDetectedMs.last} (${r.appDetectedMs.count})` : '–'} | ${r.healthMs ? `${r.healthMs.baselineMedian} → ${r.healthMs.p99} / ${r.healthMs.max}` : '–'} | ${r.eventLoopLagMaxMs ?? '–'} |`,
  );
  // Kamailio cannot hold more than one process's open files: past that, the ratio is taken
  // against its figures at the largest N it held in full.
  const kamHeld = of('kamailio').filter((r) => r.failed === 0).at(-1);
  const ratios = of('sip-server').map((r) => {
    const k = kam(r.n) ?? kamHeld;
    const against = k ? (k.n === r.n ? `${k.registered}/${r.n}` : `at N = ${k.n} (it held ${of('kamailio').map((x) => `${x.registered}/${x.n}`).join(', ')})`) : '–';
    return `| ${r.n} | ${ratio(r.registrationsPerSecond, k?.registrationsPerSecond)} | ${ratio(r.bytesPerConnection, k?.bytesPerConnection)} | ${against} |`;
  });
  const markdown = [
    `# Connections held — ${new Date().toISOString().slice(0, 10)}`,
    '',
    `N endpoints (client processes in their own network namespace, ≤ ${PER_CLIENT} connections each, ≤ ${PER_ADDRESS} per source address; ephemeral ports 10000–65000) register over one TCP connection each; ≤ ${WINDOW} REGISTERs outstanding per client process. Keep-alive on every connection, per socket: idle ${KA.idle} s, ${KA.cnt} probes ${KA.intvl} s apart (bound ${BOUND_MS} ms). Then one iptables rule pair in the endpoints' namespace drops every flow at once. Node ${process.version}; the server at log level warn with its SQLite store; a socket worker per ${PER_WORKER} connections above that (sip-tcp-workers); Kamailio 5.6 (bench/kamailio/registrar.cfg: registrar + usrloc in memory, 1 UDP + 2 TCP workers, -m 1024).`,
    '',
    `Memory is the proportional set size (PSS: shared pages split among the processes that map them) summed over every process in the server namespace, after ${WARMUP} endpoints registered first (so one-time costs are not counted per connection) and 3 s after the last of the N further ones; bytes per connection = the difference over N. The drop takes all N + ${WARMUP} connections. Heap is the server process's V8 heap in use (not the workers'), garbage not yet collected included: a rough figure that a collection between the two readings can even make negative; PSS is the one to compare. Kernel detection: polled every 100 ms in the server namespace (TCP sockets in use from /proc/net/sockstat, confirmed with \`ss\`: no established connection on port 5060 left). Detection is counted from the drop; the bound of each connection counts from its last packet (its registration or last answered probe), which was before the drop. Server detection: the detectedAt of each "connection died" log line, from the drop. /health: the control API's answer time every 20 ms during detection, baseline → p99 / max.`,
    '',
    '| target | N | workers | registered | failed | registrations/s | PSS MB before → after | bytes per connection | heap bytes per connection | drop → all dead in the kernel, ms | drop → server found dead, median / last ms (count) | /health ms | event-loop lag max ms |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|',
    ...rows,
    '',
    '## sip-server ÷ Kamailio',
    '',
    '| N | registrations/s | bytes per connection | Kamailio figures used |',
    '|---|---|---|---|',
    ...ratios,
    '',
    '{{chart}}',
  ].join('\n');
  const svg = lineChart({
    title: 'Memory per held TCP connection (PSS)',
    xLabel: 'N endpoints',
    yLabel: 'bytes per connection',
    series: TARGETS.map((t) => ({ name: t, points: of(t).filter((r) => r.bytesPerConnection !== null).map((r): [number, number] => [r.n, r.bytesPerConnection ?? 0]) })).filter((s) => s.points.length > 0),
  });
  const paths = writeReport('connections', { data: { keepAlive: KA, boundMs: BOUND_MS, perClient: PER_CLIENT, window: WINDOW, rounds }, markdown, svg });
  console.log(markdown.replace('{{chart}}', ''));
  console.log(`written ${paths.json}, ${paths.md}`);
});
