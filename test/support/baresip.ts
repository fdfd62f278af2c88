import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './ports.js';
import { Waiter } from './waiter.js';

/*
 * A real softphone for tests: baresip 1.0 (Debian) as a process, with no sound card (aubridge
 * as player and source, G.711 only), driven over its ctrl_tcp module. ctrl_tcp speaks
 * netstrings ("LEN:PAYLOAD,") of JSON: we send {"command","params","token"}, it answers
 * {"response":true,"ok","data","token"} and pushes events {"event":true,"type","class",
 * "accountaor","direction","peeruri","id","param"}. Commands are the menu's long names: dial,
 * accept, hangup, hold, resume, transfer, listcalls, reginfo, uanew, quit.
 *
 * The account is not in the `accounts` file but created with `uanew` once the control
 * connection is up: baresip registers an account from the file while it loads its modules,
 * before anyone can be connected to ctrl_tcp, and ctrl_tcp keeps no events for a late client,
 * so REGISTER_OK would be lost.
 */

export type BaresipTransport = 'UDP' | 'TCP' | 'TLS';

export interface BaresipOptions {
  /** The DN: the account's user (and digest user name). */
  dn: string;
  /**
   * auth_pass. baresip 1.0 gives up on a SHA-256 challenge, which the server offers first by
   * default ("Function not implemented"): the server needs `sip-auth-algorithms: [MD5]`.
   */
  password?: string;
  /** Where the server listens for this phone's transport (its TLS port for TLS). */
  server: { address: string; port: number };
  /** Default UDP. */
  transport?: BaresipTransport;
  /** Local SIP port for UDP/TCP; baresip listens for TLS on port + 1 (space phones by 10). Default: a free one. */
  sipPort?: number;
  /** The address baresip binds and writes in Via, Contact and SDP (default 127.0.0.1; in a namespace, its address). */
  address?: string;
  /** manual (default): the test accepts with `accept`; auto: baresip answers at once (and then reports no CALL_INCOMING, only CALL_ESTABLISHED). */
  answerMode?: 'manual' | 'auto';
  /** CA file for TLS (sip_cafile). baresip 1.0 adds it to its trust store but never checks the server's certificate (libre 1.1 sets no verify mode for clients). */
  caFile?: string;
  /** Registration interval, s (default 600: no refresh during a test). */
  regint?: number;
  /** baresip quits by itself after this long, so a test process killed outright leaves none behind (default 900 s). */
  lifetimeS?: number;
}

/** An event from baresip's ctrl_tcp. */
export interface BaresipEvent {
  type: string;
  class?: string;
  accountaor?: string;
  direction?: 'incoming' | 'outgoing';
  peeruri?: string;
  /** baresip's call id (its SIP Call-ID). */
  id?: string;
  /** e.g. CALL_CLOSED: "486 Rejected" (a final response), "Connection reset by peer" (BYE or CANCEL received), "… by user" (hung up here). */
  param?: string;
  /** Arrival time, ms. */
  at: number;
  [key: string]: unknown;
}

export interface BaresipResponse {
  ok: boolean;
  data: string;
}

/** One SIP message from the `-s` trace, as the phone sent or received it. */
export interface TracedMessage {
  dir: 'in' | 'out';
  transport: string;
  src: string;
  dst: string;
  /** e.g. "INVITE sip:3002@127.0.0.1:5060 SIP/2.0" or "SIP/2.0 180 Ringing". */
  startLine: string;
  /** Header values by lower-case name, in order. */
  headers: Record<string, string[]>;
  body: string;
  /** The message as traced. */
  raw: string;
}

const ESC = String.fromCharCode(27);

/** Every phone still running, killed if the test process exits without stopping them. */
const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const proc of running) proc.kill('SIGKILL');
});

export class Baresip {
  readonly events: BaresipEvent[] = [];
  readonly dn: string;
  readonly transport: BaresipTransport;
  readonly address: string;
  /** The account's address of record, as baresip names it in events. */
  readonly aor: string;
  private out = '';
  private ctrl!: Socket;
  private inbox = Buffer.alloc(0);
  private nextToken = 1;
  private readonly pending = new Map<string, (r: BaresipResponse) => void>();
  /** Woken by every event and every chunk of output; closed when baresip exits. */
  private readonly waiter: Waiter;
  private proc!: ChildProcess;
  private exited!: Promise<number | null>;

  private constructor(
    private readonly opts: BaresipOptions,
    readonly sipPort: number,
    readonly dir: string,
  ) {
    this.dn = opts.dn;
    this.transport = opts.transport ?? 'UDP';
    this.address = opts.address ?? '127.0.0.1';
    this.aor = `sip:${opts.dn}@${opts.server.address}:${opts.server.port}`;
    const lastLines = (): string => this.sipMessages().slice(-6).map((m) => `${m.dir} ${m.startLine}`).join(' | ');
    this.waiter = new Waiter(() => `baresip ${this.dn} events: ${this.eventSummary()}; last SIP: ${lastLines() || 'none'}`);
  }

  /** Starts baresip, connects to its control port and registers; resolves on REGISTER_OK. */
  static async start(opts: BaresipOptions): Promise<Baresip> {
    const sipPort = opts.sipPort ?? (await freeSipPortPair(opts.address ?? '127.0.0.1'));
    const phone = new Baresip(opts, sipPort, mkdtempSync(join(tmpdir(), `baresip-${opts.dn}-`)));
    // Not one of the SIP ports, which baresip has not bound yet.
    let ctrlPort = await freePort();
    while (ctrlPort === sipPort || ctrlPort === sipPort + 1) ctrlPort = await freePort();
    phone.writeConfig(ctrlPort);
    phone.spawn();
    try {
      await phone.connectCtrl(ctrlPort);
      const created = await phone.command('uanew', phone.accountLine());
      if (!created.ok) throw new Error(`uanew failed: ${created.data}`);
      const reg = await phone.waitEvent(['REGISTER_OK', 'REGISTER_FAIL'], () => true, 10_000);
      if (reg.type === 'REGISTER_FAIL') throw new Error(`REGISTER_FAIL: ${reg.param ?? ''}`);
    } catch (err) {
      await phone.stop();
      throw new Error(`baresip ${opts.dn} did not register: ${(err as Error).message}\n${phone.output().slice(-3000)}`);
    }
    return phone;
  }

  /** The accounts line (the same text would go in the `accounts` file). */
  accountLine(): string {
    const { server, password, answerMode, regint } = this.opts;
    const params = [`regint=${regint ?? 600}`, `answermode=${answerMode ?? 'manual'}`, ...(password ? [`auth_pass=${password}`] : [])];
    return `<sip:${this.dn}@${server.address}:${server.port};transport=${this.transport.toLowerCase()}>;${params.join(';')}`;
  }

  private writeConfig(ctrlPort: number): void {
    const sink = `sink${this.sipPort}`;
    const config = [
      'poll_method epoll',
      `sip_listen ${this.address}:${this.sipPort}`,
      // An address, not an interface name: it is then the one address for SIP and SDP (with
      // lo named, or nothing, baresip may take the host's eth0 address for its SDP).
      `net_interface ${this.address}`,
      ...(this.opts.caFile ? [`sip_cafile ${this.opts.caFile}`] : []),
      'call_local_timeout 120',
      'module_path /usr/lib/baresip/modules',
      // No stdio module: baresip's stdin is not a terminal here.
      'module g711.so',
      'module aubridge.so',
      'module_app account.so',
      'module_app contact.so',
      'module_app menu.so',
      'module_app ctrl_tcp.so',
      `audio_player aubridge,${sink}`,
      `audio_source aubridge,src${this.sipPort}`,
      `audio_alert aubridge,${sink}`,
      'ausrc_format s16',
      'auplay_format s16',
      `ctrl_tcp_listen 127.0.0.1:${ctrlPort}`,
      '',
    ];
    writeFileSync(join(this.dir, 'config'), config.join('\n'));
    writeFileSync(join(this.dir, 'accounts'), '');
    writeFileSync(join(this.dir, 'contacts'), '');
  }

  private spawn(): void {
    const args = ['-4', '-s', '-t', String(this.opts.lifetimeS ?? 900), '-f', this.dir];
    // stdbuf: on a pipe baresip's stdout is block-buffered; line-buffered, the trace is live.
    this.proc = spawn('stdbuf', ['-oL', 'baresip', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    running.add(this.proc);
    const collect = (d: Buffer): void => {
      this.out += d.toString('latin1');
      this.wake();
    };
    this.proc.stdout?.on('data', collect);
    this.proc.stderr?.on('data', collect);
    this.exited = new Promise((resolve) =>
      this.proc.once('exit', (code) => {
        running.delete(this.proc);
        this.waiter.close(`baresip exited (${code ?? 'signal'})`);
        resolve(code);
      }),
    );
  }

  private async connectCtrl(port: number): Promise<void> {
    const deadline = Date.now() + 5000;
    for (;;) {
      if (this.proc.exitCode !== null) throw new Error(`baresip exited with ${this.proc.exitCode}`);
      try {
        this.ctrl = await new Promise<Socket>((resolve, reject) => {
          const s = connect(port, '127.0.0.1', () => resolve(s));
          s.once('error', reject);
        });
        break;
      } catch (err) {
        if (Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    this.ctrl.on('data', (d: Buffer) => this.onCtrlData(d));
    this.ctrl.on('error', () => this.wake());
  }

  /** Splits netstrings off the control stream. */
  private onCtrlData(data: Buffer): void {
    this.inbox = Buffer.concat([this.inbox, data]);
    for (;;) {
      const colon = this.inbox.indexOf(':');
      if (colon < 0) return;
      const len = Number(this.inbox.subarray(0, colon).toString());
      if (this.inbox.length < colon + 1 + len + 1) return;
      const json = this.inbox.subarray(colon + 1, colon + 1 + len).toString();
      this.inbox = this.inbox.subarray(colon + 1 + len + 1);
      this.onCtrlMessage(JSON.parse(json) as Record<string, unknown>);
    }
  }

  private onCtrlMessage(msg: Record<string, unknown>): void {
    if (msg.response === true) {
      const token = typeof msg.token === 'string' ? msg.token : '';
      this.pending.get(token)?.({ ok: msg.ok === true, data: typeof msg.data === 'string' ? msg.data : '' });
      this.pending.delete(token);
    } else if (msg.event === true) {
      const event: BaresipEvent = { ...msg, type: String(msg.type), at: Date.now() };
      this.events.push(event);
      this.wake();
    }
  }

  private wake(): void {
    this.waiter.notify();
  }

  /** Runs a menu command (`params` is its argument text, e.g. a URI for dial) and returns baresip's answer. */
  command(name: string, params?: string, ms = 5000): Promise<BaresipResponse> {
    const token = String(this.nextToken++);
    const body = Buffer.from(JSON.stringify({ command: name, ...(params !== undefined ? { params } : {}), token }));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(token);
        reject(new Error(`baresip ${this.dn}: no answer to "${name}" within ${ms} ms`));
      }, ms);
      this.pending.set(token, (r) => {
        clearTimeout(timer);
        resolve(r);
      });
      this.ctrl.write(Buffer.concat([Buffer.from(`${body.length}:`), body, Buffer.from(',')]));
    });
  }

  /** A mark for `waitEvent(…, since)`: only events from now on count. */
  mark(): number {
    return this.events.length;
  }

  /** The first event of `type` (or one of several types), from index `since`, matching `match`; waits up to `ms` for it. */
  waitEvent(type: string | string[], match: (e: BaresipEvent) => boolean = () => true, ms = 5000, since = 0): Promise<BaresipEvent> {
    const types = Array.isArray(type) ? type : [type];
    return this.waiter.until(types.join('/'), ms, () => this.events.slice(since).find((e) => types.includes(e.type) && match(e)));
  }

  /** The events from index `since` as "TYPE(param), …", leaving out media chatter (SDP, RTCP). */
  eventSummary(since = 0): string {
    const quiet = new Set(['CALL_RTCP', 'CALL_LOCAL_SDP', 'CALL_REMOTE_SDP']);
    return this.events.slice(since).filter((e) => !quiet.has(e.type)).map((e) => (e.param ? `${e.type}(${e.param})` : e.type)).join(', ') || 'none';
  }

  /** Dials a number at the server (or a full SIP URI); baresip adds the account's transport itself. */
  dial(target: string): Promise<BaresipResponse> {
    return this.command('dial', this.uriOf(target));
  }

  /** Blind transfer of the current call (REFER) to a number at the server or a SIP URI. */
  transfer(target: string): Promise<BaresipResponse> {
    return this.command('transfer', this.uriOf(target));
  }

  private uriOf(target: string): string {
    return target.startsWith('sip:') ? target : `sip:${target}@${this.opts.server.address}:${this.opts.server.port}`;
  }

  /** The phone's calls as `listcalls` prints them: one line each (state, peer URI). */
  async calls(): Promise<string[]> {
    const res = await this.command('listcalls');
    return res.data.split('\n').filter((l) => l.includes('[line '));
  }

  /** Everything baresip wrote (its log and, with -s, the SIP trace). */
  output(): string {
    return this.out;
  }

  /** The `-s` trace as text: every SIP message sent (>>) and received (<<), in order. */
  sipTrace(): string {
    return this.sipMessages()
      .map((m) => `${m.dir === 'in' ? '<<' : '>>'} ${m.transport} ${m.src} -> ${m.dst}\n${m.raw.replace(/\r\n/g, '\n')}`)
      .join('\n');
  }

  /** The trace parsed: blocks "ESC[36;1m#\nTRANSPORT SRC -> DST\nMESSAGE ESC[;m\n". */
  sipMessages(): TracedMessage[] {
    const list: TracedMessage[] = [];
    // The ANSI colour codes around each block are how baresip marks it (ESC = \x1b).
    const block = new RegExp(`${ESC}\\[36;1m#\\n(\\S+) (\\S+) -> (\\S+)\\n([\\s\\S]*?)${ESC}\\[;m\\n`, 'g');
    for (const m of this.out.matchAll(block)) {
      const [, transport = '', src = '', dst = '', raw = ''] = m;
      const [head = '', body = ''] = raw.split(/\r\n\r\n/, 2);
      const [startLine = '', ...lines] = head.split('\r\n');
      const headers: Record<string, string[]> = {};
      for (const line of lines) {
        const i = line.indexOf(':');
        if (i < 0) continue;
        const name = line.slice(0, i).trim().toLowerCase();
        (headers[name] ??= []).push(line.slice(i + 1).trim());
      }
      list.push({ dir: this.direction(src, dst), transport, src, dst, startLine, headers, body, raw });
    }
    return list;
  }

  /** The traced messages one way that match, e.g. `traced('in', (m) => m.startLine.startsWith('BYE '))`. */
  traced(dir: 'in' | 'out', match: (m: TracedMessage) => boolean = () => true): TracedMessage[] {
    return this.sipMessages().filter((m) => m.dir === dir && match(m));
  }

  /**
   * Like `traced`, but waits (up to `ms`) until at least one message matches. The trace comes
   * through baresip's stdout and events through ctrl_tcp: a message the phone handled before
   * an event may still be in the pipe when the event arrives.
   */
  waitTraced(dir: 'in' | 'out', match: (m: TracedMessage) => boolean, ms = 3000): Promise<TracedMessage[]> {
    return this.waiter.until(`a message ${dir === 'in' ? 'received' : 'sent'}`, ms, () => {
      const found = this.traced(dir, match);
      return found.length > 0 ? found : undefined;
    });
  }

  /** Like `waitTraced`, but waits until at least `count` messages match (e.g. the second NOTIFY of a dialog); resolves with all that match. */
  waitTracedCount(dir: 'in' | 'out', match: (m: TracedMessage) => boolean, count: number, ms = 3000): Promise<TracedMessage[]> {
    return this.waiter.until(`${count} messages ${dir === 'in' ? 'received' : 'sent'}`, ms, () => {
      const found = this.traced(dir, match);
      return found.length >= count ? found : undefined;
    });
  }

  private isOwn(hostPort: string): boolean {
    return hostPort === `${this.address}:${this.sipPort}` || hostPort === `${this.address}:${this.sipPort + 1}`;
  }

  /**
   * Sent or received, from the trace's addresses: a message to the phone's listening port is
   * received; one from it is sent; otherwise (a connection the phone opened, from an ephemeral
   * port) it is received when it comes from the server's address and port.
   */
  private direction(src: string, dst: string): 'in' | 'out' {
    if (this.isOwn(dst)) return 'in';
    if (this.isOwn(src)) return 'out';
    return src === `${this.opts.server.address}:${this.opts.server.port}` ? 'in' : 'out';
  }

  /** quit (which un-registers), then SIGKILL if baresip is still there after `ms`. */
  async stop(ms = 3000): Promise<void> {
    if (this.proc.exitCode === null && this.ctrl && !this.ctrl.destroyed) {
      this.command('quit', undefined, ms).catch(() => undefined);
    } else if (this.proc.exitCode === null) {
      this.proc.kill('SIGTERM');
    }
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), ms);
    await this.exited;
    clearTimeout(timer);
    this.ctrl?.destroy();
  }
}

/** A port on `address` free for UDP and TCP, with the next one free for TCP too: baresip's TLS listens there. */
async function freeSipPortPair(address: string): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = await freePort();
    if ((await canBind('udp', address, port)) && (await canBind('tcp', address, port)) && (await canBind('tcp', address, port + 1))) return port;
  }
  throw new Error(`no free port pair for baresip on ${address}`);
}

function canBind(kind: 'udp' | 'tcp', address: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    if (kind === 'udp') {
      const u = createSocket('udp4');
      u.once('error', () => resolve(false));
      u.bind(port, address, () => u.close(() => resolve(true)));
    } else {
      const s = createServer();
      s.once('error', () => resolve(false));
      s.listen(port, address, () => s.close(() => resolve(true)));
    }
  });
}
