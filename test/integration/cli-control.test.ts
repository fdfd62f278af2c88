import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { getJson } from '../support/api-client.js';
import { freePort } from '../support/ports.js';
import { CLI, startServer, type RunningServer } from '../support/server-process.js';
import { SipPeer, type IncomingCall, type PeerCall } from '../support/sip-peer.js';

/*
 * The control commands of the command line (sip-server status | dns | connections | calls |
 * release) against a real server: a phone registered over TCP calling one registered over
 * UDP, the real CLI run as a child process, its output read as an operator would.
 */

const TOKEN = 'cli-control-test-token-0042';
const DNS = {
  '1001': { type: 'extension', contact: '*' },
  '1002': { type: 'extension', contact: '*' },
  '1003': { type: 'extension', contact: '*' },
  gw: { type: 'trunk', contact: 'sip:127.0.0.1:5999', prefix: '9' },
};

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `node dist/cli.js ARGS` with `env` over an environment without SIP_SERVER_URL/TOKEN. */
function cli(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const base = { ...process.env };
  delete base.SIP_SERVER_URL;
  delete base.SIP_SERVER_TOKEN;
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...base, ...env } });
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    proc.once('error', reject);
    proc.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** The run succeeded: exit 0, nothing on stderr. */
function ok(r: Run): string {
  expect(r, r.stderr).toMatchObject({ code: 0, stderr: '' });
  return r.stdout;
}

/** A failure the CLI explains: the exit status, and one message, never a stack trace. */
function failed(r: Run, code: number): string {
  expect(r.code, r.stdout + r.stderr).toBe(code);
  expect(r.stderr).not.toMatch(/^\s+at /m);
  expect(r.stdout).toBe('');
  return r.stderr;
}

/** The table line whose first cell is `first`, split into its cells (columns are two or more spaces apart). */
function row(table: string, first: string): string[] {
  const line = table.split('\n').find((l) => l.split(/\s{2,}/)[0] === first);
  expect(line, `no line for ${first} in\n${table}`).toBeDefined();
  return (line ?? '').split(/\s{2,}/);
}

function sdp(owner: string, port: number): string {
  return ['v=0', `o=${owner} 1 1 IN IP4 127.0.0.1`, 's=-', 'c=IN IP4 127.0.0.1', 't=0 0', `m=audio ${port} RTP/AVP 0`, ''].join('\r\n');
}

/** Numbers that move with the clock between two reads (ages, idle times, expiries) set to 0. */
function still(json: unknown): unknown {
  return JSON.parse(JSON.stringify(json), (key, value: unknown) => (['ageS', 'idleS', 'expires'].includes(key) && typeof value === 'number' ? 0 : value));
}

interface DnJson {
  number: string;
  contacts: { contact: string; source: string; flowId: string | null; transport: string }[];
}
interface ConnectionJson {
  id: string;
  keepAlive: { enabled: boolean; idleS?: number; intervalS?: number; count?: number };
}
interface CallJson {
  id: string;
  legs: { caller: { transport: string; remote: string }; callee: { transport: string; remote: string } };
}

describe('sip-server status | dns | connections | calls | release: the command line of a running server', () => {
  let server: RunningServer;
  let caller: SipPeer;
  let callee: SipPeer;
  let call: PeerCall;
  let incoming: IncomingCall;
  let callId = '';
  let api: string[] = [];
  const get = async <T>(path: string): Promise<T> => {
    const r = await getJson<T>(server.api, path, TOKEN);
    expect(r.status).toBe(200);
    return r.body;
  };

  beforeAll(async () => {
    server = await startServer({
      logLevel: 'info',
      tserver: {
        'http-token': TOKEN,
        'sip-enable-tcp-keep-alive': true,
        'sip-tcp-keep-alive-idle': 30,
        'sip-tcp-keep-alive-interval': 7,
        'sip-tcp-keep-alive-count': 4,
      },
      dns: DNS,
    });
    api = ['--url', server.api, '--token', TOKEN];
    caller = await SipPeer.start({ transport: 'TCP', user: '1001' });
    callee = await SipPeer.start({ transport: 'UDP', user: '1002' });
    await caller.register(server.port);
    await callee.register(server.port);
    call = caller.call(server.port, '1002', { sdp: sdp('1001', 40000) });
    incoming = await callee.nextIncomingCall();
    incoming.ring();
    const ack = incoming.answer(sdp('1002', 50000));
    expect((await call.final()).status).toBe(200);
    await ack;
    const calls = await get<CallJson[]>('/calls');
    expect(calls).toHaveLength(1);
    callId = calls[0]?.id ?? '';
  });

  afterAll(async () => {
    await caller?.close();
    await callee?.close();
    if (server) expect(await server.stop()).toBe(0);
  });

  it('status: health, uptime and the counts of DNs, registrations, connections and calls', async () => {
    const out = ok(await cli(['status', ...api]));
    expect(out).toMatch(new RegExp(`^control API\\s+${server.api}$`, 'm'));
    expect(out).toMatch(/^health\s+ok$/m);
    expect(out).toMatch(/^uptime\s+\d+s$/m);
    expect(out).toMatch(/^DNs\s+4 \(in service 3, out of service 1\)$/m);
    expect(out).toMatch(/^registrations\s+2 \(2 DNs registered\)$/m);
    expect(out).toMatch(/^connections\s+1 \(TCP 1\)$/m);
    expect(out).toMatch(/^calls\s+1 in progress \(established 1\)$/m);
  });

  it('dns: each DN with its type, state, reason and contacts; dns 1001: the registration in detail', async () => {
    const [reg] = (await get<DnJson>('/dns/1001')).contacts;
    if (!reg) throw new Error('1001 has no contact');
    const table = ok(await cli(['dns', ...api]));
    expect(table.split('\n')[0]).toMatch(/^NUMBER\s+TYPE\s+STATE\s+SINCE\s+REASON\s+CONTACTS$/);
    expect(row(table, '1001')).toEqual(['1001', 'extension', 'in-service', expect.stringMatching(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ$/), expect.any(String), reg.contact]);
    expect(row(table, '1003')).toEqual(['1003', 'extension', 'out-of-service', expect.any(String), 'not registered', '-']);
    expect(row(table, 'gw')).toEqual(['gw', 'trunk', 'in-service', expect.any(String), 'fixed contact', 'sip:127.0.0.1:5999']);

    const detail = ok(await cli(['dns', '1001', ...api]));
    expect(detail).toMatch(/^state\s+in-service$/m);
    expect(detail).toMatch(/^contact\s+\* \(registers\)$/m);
    expect(row(detail, reg.contact)).toEqual([reg.contact, 'TCP', reg.source, expect.stringMatching(/^\d+m\d\ds$/), reg.flowId, expect.any(String), expect.any(String)]);
    expect(ok(await cli(['dns', '1003', ...api]))).toMatch(/^no registered contacts$/m);
  });

  it('connections: the phone\'s TCP connection with its addresses, age, idle time and keep-alive', async () => {
    const [reg] = (await get<DnJson>('/dns/1001')).contacts;
    const conns = await get<ConnectionJson[]>('/connections');
    expect(conns).toHaveLength(1);
    expect(conns[0]?.keepAlive).toMatchObject({ enabled: true, idleS: 30, intervalS: 7, count: 4 });
    const table = ok(await cli(['connections', ...api]));
    expect(table.split('\n')[0]).toMatch(/^ID\s+TRANSPORT\s+ORIGIN\s+STATE\s+LOCAL\s+REMOTE\s+AGE\s+IDLE\s+ACTIVE\s+KEEP-ALIVE$/);
    expect(row(table, reg?.flowId ?? '')).toEqual([
      reg?.flowId,
      'TCP',
      'accepted',
      expect.any(String),
      `127.0.0.1:${server.port}`,
      reg?.source,
      expect.stringMatching(/^\d+s$/),
      expect.stringMatching(/^\d+s$/),
      '0',
      'on idle=30s interval=7s count=4',
    ]);
  });

  it('calls: the call with both legs; calls ID: the call in detail', async () => {
    const live = await get<CallJson>(`/calls/${callId}`);
    const table = ok(await cli(['calls', ...api]));
    expect(table.split('\n')[0]).toMatch(/^ID\s+STATE\s+FROM\s+TO\s+CALLER-LEG\s+CALLEE-LEG\s+STARTED\s+DURATION$/);
    expect(row(table, callId)).toEqual([
      callId,
      'established',
      '1001',
      '1002',
      `TCP ${live.legs.caller.remote}`,
      `UDP ${live.legs.callee.remote}`,
      expect.stringMatching(/Z$/),
      expect.stringMatching(/^\d+s$/),
    ]);
    const detail = ok(await cli(['calls', callId, ...api]));
    expect(detail).toMatch(new RegExp(`^id\\s+${callId}$`, 'm'));
    expect(detail).toMatch(/^state\s+established$/m);
    expect(detail).toMatch(/^callee DN\s+1002$/m);
    expect(row(detail, 'caller').slice(0, 4)).toEqual(['caller', '1001', 'TCP', live.legs.caller.remote]);
    expect(row(detail, 'callee').slice(0, 4)).toEqual(['callee', '1002', 'UDP', live.legs.callee.remote]);
  });

  it('--json prints the API\'s JSON unchanged (status: each answer under its path)', async () => {
    for (const path of ['/dns', '/dns/1001', '/connections', '/calls', `/calls/${callId}`]) {
      const r = await cli([...path.slice(1).split('/'), '--json', ...api]);
      expect(still(JSON.parse(ok(r)))).toEqual(still(await get(path)));
    }
    const status = JSON.parse(ok(await cli(['status', '--json', ...api]))) as Record<string, unknown>;
    expect(still(status)).toEqual(still({ health: await get('/health'), dns: await get('/dns'), connections: await get('/connections'), calls: await get('/calls') }));
  });

  it('release CALL: both phones get a BYE, the call is gone from the table and its record says why', async () => {
    const r = ok(await cli(['release', callId, ...api]));
    expect(r).toBe(`call ${callId} released (state released, cause administrative)\n`);
    await call.byeReceived();
    await incoming.byeReceived();
    expect(ok(await cli(['calls', ...api]))).toBe('no calls in progress\n');
    const record = ok(await cli(['calls', callId, ...api]));
    expect(record).toMatch(/^state\s+released$/m);
    expect(record).toMatch(/^cause\s+administrative$/m);
    expect(failed(await cli(['release', callId, ...api]), 1)).toBe(`sip-server: 404 unknown call ${callId}\n`);
    expect(ok(await cli(['status', ...api]))).toMatch(/^calls\s+0 in progress$/m);
  });

  it('an API error is exit 1 with its status and text: an unknown DN', async () => {
    expect(failed(await cli(['dns', '9999', ...api]), 1)).toBe('sip-server: 404 unknown DN 9999\n');
  });

  it('a missing or wrong token is exit 1 saying so', async () => {
    const wrong = failed(await cli(['status', '--url', server.api, '--token', 'not-the-token']), 1);
    expect(wrong).toBe('sip-server: 401 missing or wrong bearer token: the token from --token is wrong\n');
    const none = failed(await cli(['dns', '--url', server.api]), 1);
    expect(none).toMatch(/^sip-server: 401 missing or wrong bearer token: no token was given: pass --token, set SIP_SERVER_TOKEN/);
    const fromEnv = failed(await cli(['calls', '--url', server.api], { SIP_SERVER_TOKEN: 'not-the-token' }), 1);
    expect(fromEnv).toContain('the token from SIP_SERVER_TOKEN is wrong');
  });

  it('URL and token from SIP_SERVER_URL / SIP_SERVER_TOKEN, and --config FILE (a wildcard http-address means loopback)', async () => {
    expect(ok(await cli(['status'], { SIP_SERVER_URL: server.api, SIP_SERVER_TOKEN: TOKEN }))).toMatch(/^health\s+ok$/m);
    // The flags win over the environment.
    expect(ok(await cli(['dns', '1001', ...api], { SIP_SERVER_URL: 'http://127.0.0.1:1', SIP_SERVER_TOKEN: 'wrong' }))).toMatch(/^state\s+in-service$/m);
    // The server's own file.
    expect(ok(await cli(['status', '--config', join(server.dir, 'config.yaml')]))).toMatch(/^health\s+ok$/m);
    const dir = mkdtempSync(join(tmpdir(), 'sip-cli-'));
    const wildcard = join(dir, 'wildcard.yaml');
    writeFileSync(wildcard, stringify({ TServer: { 'http-address': '0.0.0.0', 'http-port': server.httpPort, 'http-token': TOKEN } }));
    const viaFile = ok(await cli(['status', '-c', wildcard], { SIP_SERVER_URL: 'http://127.0.0.1:1' }));
    expect(viaFile).toMatch(new RegExp(`^control API\\s+http://127\\.0\\.0\\.1:${server.httpPort}$`, 'm'));
    const off = join(dir, 'off.yaml');
    writeFileSync(off, stringify({ TServer: { 'http-port': 0 } }));
    expect(failed(await cli(['status', '--config', off]), 1)).toBe(`sip-server: ${off}: http-port is 0: the control API is off\n`);
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, stringify({ TServer: { 'http-prot': 8080 } }));
    expect(failed(await cli(['status', '--config', bad]), 2)).toContain(`${bad}: TServer.http-prot: unknown option (did you mean "http-port"?)`);
  });

  it('bad usage is exit 2 with the usage text: unknown command, missing or extra argument, misplaced option', async () => {
    for (const [args, message] of [
      [['frobnicate'], 'unknown command "frobnicate"'],
      [['release', ...api], 'release needs a CALL'],
      [['dns', '1001', '1002', ...api], 'too many arguments: sip-server dns [DN]'],
      [['--json'], '--json is an option of the control commands'],
      [['status', '--timeout', 'soon'], '--timeout: "soon" is not a number of seconds'],
      [['status', '--url', 'ftp://127.0.0.1'], '--url: "ftp://127.0.0.1" is not an http:// or https:// URL'],
      [['status', '--bogus'], "Unknown option '--bogus'"],
    ] as const) {
      const err = failed(await cli([...args]), 2);
      expect(err).toContain(message);
      expect(err).toContain('usage:');
    }
  });

  it('--help lists the control commands and options', async () => {
    const help = ok(await cli(['--help']));
    for (const text of ['sip-server status', 'sip-server dns [DN]', 'sip-server connections', 'sip-server calls [ID]', 'sip-server release CALL', '--url URL', '--token TOKEN', '--json']) {
      expect(help).toContain(text);
    }
  });

  it('a server that is not there is exit 1, "cannot reach"', async () => {
    const port = await freePort();
    const r = failed(await cli(['status', '--url', `http://127.0.0.1:${port}`]), 1);
    expect(r).toBe(`sip-server: cannot reach the control API at http://127.0.0.1:${port}: connection refused (is the server running, with the control API on this address and port?)\n`);
  });
});
