#!/usr/bin/env node
// Calls-per-second benchmark: SIPp UAC → sip-server → SIPp UAS (registered as a DN), over UDP
// and TCP. Steps the call rate up and reports the highest rate at which every call of a run
// succeeded. Writes bench/results/<date>-calls.json.
//
//   npm run bench:calls -- [--seconds 10] [--rates 100,200,400,800,1200,1600] [--transports udp,tcp]
import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

const root = resolve(dirname(new URL(import.meta.url).pathname), '../..');
const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '10' },
    rates: { type: 'string', default: '100,200,400,800,1200,1600,2000' },
    transports: { type: 'string', default: 'udp,tcp' },
  },
});
const seconds = Number(values.seconds);
const rates = values.rates.split(',').map(Number);

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

function run(cmd, args, opts = {}) {
  return new Promise((done) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], cwd: tmpdir(), ...opts });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (out += d));
    p.once('exit', (code) => done({ code, out }));
  });
}

async function startServer(port) {
  const dir = mkdtempSync(join(tmpdir(), 'bench-calls-'));
  const config = join(dir, 'config.yaml');
  writeFileSync(
    config,
    `TServer:\n  sip-port: ${port}\n  http-port: 0\n  store: "sqlite:${join(dir, 'state.db')}"\nlog:\n  level: warn\ndns:\n  "1002": { type: extension, contact: "*" }\n  "1003": { type: extension, contact: "*" }\n`,
  );
  const proc = spawn(process.execPath, [join(root, 'dist/cli.js'), '--config', config], { stdio: ['ignore', 'pipe', 'pipe'] });
  // The server logs at warn: wait until its UDP port is bound.
  for (let i = 0; i < 100; i++) {
    const taken = await new Promise((r) => {
      const u = createSocket('udp4');
      u.once('error', () => r(true));
      u.bind(port, '127.0.0.1', () => u.close(() => r(false)));
    });
    if (taken) return proc;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('server did not start');
}

async function register(serverPort, dn, contactPort, transport) {
  const u = createSocket('udp4');
  await new Promise((r) => u.bind(0, '127.0.0.1', r));
  const me = u.address().port;
  const msg = [
    `REGISTER sip:127.0.0.1:${serverPort} SIP/2.0`,
    `Via: SIP/2.0/UDP 127.0.0.1:${me};branch=z9hG4bKbench${dn}`,
    `From: <sip:${dn}@127.0.0.1>;tag=b${dn}`,
    `To: <sip:${dn}@127.0.0.1>`,
    `Call-ID: bench-${dn}`,
    'CSeq: 1 REGISTER',
    `Contact: <sip:${dn}@127.0.0.1:${contactPort};transport=${transport}>`,
    'Expires: 3600',
    'Content-Length: 0',
    '',
    '',
  ].join('\r\n');
  const answer = new Promise((r) => u.once('message', (m) => r(m.toString().split('\r\n')[0])));
  u.send(msg, serverPort, '127.0.0.1');
  const line = await answer;
  u.close();
  if (!line.includes(' 200 ')) throw new Error(`REGISTER ${dn}: ${line}`);
}


const results = [];
for (const transport of values.transports.split(',')) {
  const sippT = transport === 'tcp' ? 't1' : 'u1';
  const dn = transport === 'tcp' ? '1003' : '1002';
  const serverPort = await freePort();
  const uasPort = await freePort();
  const server = await startServer(serverPort);
  await register(serverPort, dn, uasPort, transport);
  const uas = spawn('sipp', ['-sf', join(root, 'test/sipp/uas-basic.xml'), '-t', sippT, '-i', '127.0.0.1', '-p', String(uasPort), '-nostdin', '-buff_size', '4194304', '-max_socket', '60000'], { stdio: 'ignore', cwd: tmpdir() });
  await new Promise((r) => setTimeout(r, 500));
  let best = 0;
  const steps = [];
  for (const rate of rates) {
    const calls = rate * seconds;
    const started = Date.now();
    const r = await run('sipp', [
      '-sf', join(root, 'test/sipp/uac-basic.xml'), '-t', sippT, '-i', '127.0.0.1', '-s', dn,
      '-r', String(rate), '-m', String(calls), '-l', String(rate * 2), '-timeout', `${seconds * 3 + 30}s`, '-timeout_error',
      '-nostdin', '-buff_size', '4194304', '-max_socket', '60000', `127.0.0.1:${serverPort}`,
    ]);
    const failed = Number(/Failed call\s*\|\s*\d+\s*\|\s*(\d+)/.exec(r.out)?.[1] ?? (r.code === 0 ? 0 : calls));
    const step = { rate, calls, failed, exit: r.code, wallS: (Date.now() - started) / 1000 };
    steps.push(step);
    console.log(`${transport.toUpperCase()} ${rate} calls/s × ${seconds} s: ${failed} failed (sipp exit ${r.code})`);
    if (r.code !== 0 || failed > 0) break;
    best = rate;
  }
  uas.kill('SIGKILL');
  server.kill('SIGTERM');
  results.push({ transport, highestZeroFailureRate: best, steps });
  console.log(`${transport.toUpperCase()}: highest rate with zero failed calls: ${best} calls/s`);
}

const date = new Date().toISOString().slice(0, 10);
mkdirSync(join(root, 'bench/results'), { recursive: true });
const file = join(root, 'bench/results', `${date}-calls.json`);
writeFileSync(file, `${JSON.stringify({ date: new Date().toISOString(), node: process.version, secondsPerStep: seconds, results }, null, 2)}\n`);
console.log(`written ${file}`);
