import { getHeaderValues, SIP_VERSION, type SipHeader, type SipMessage, type SipRequest, type SipResponse } from '../../src/sip/message.js';
import { tagOf } from '../../src/sip/name-addr.js';
import { createResponse } from '../../src/sip/response.js';
import { serializeMessage } from '../../src/sip/serializer.js';
import { IncomingCall, PeerCall } from './sip-peer-calls.js';
import { withBody, type DialogCall, type MessageOptions } from './sip-peer-dialog.js';
import { branchOf, cseqMethod, newBranch, newTag, PeerClientTx, PeerServerTx, random, type PeerCore } from './sip-peer-transactions.js';
import { PeerTransport, type PeerFlow, type PeerTlsOptions, type PeerTransportName, type Remote } from './sip-peer-transport.js';
import { Waiter } from './waiter.js';

export { IncomingCall, PeerCall } from './sip-peer-calls.js';
export type { AnswerRule, AnswerSpec, CallState, InboundRequest, MessageOptions } from './sip-peer-dialog.js';
export type { PeerFlow, PeerTlsOptions, PeerTransportName, Remote } from './sip-peer-transport.js';
export { branchOf } from './sip-peer-transactions.js';
export type { PeerClientTx, PeerServerTx } from './sip-peer-transactions.js';

export interface SipPeerOptions {
  /** Default UDP. */
  transport?: PeerTransportName;
  /** The user part of From and Contact (the DN the peer stands for). */
  user: string;
  /** Certificate material, for transport TLS. */
  tls?: PeerTlsOptions;
  /** T1 for the peer's own retransmissions over UDP, ms (default 500). */
  t1?: number;
  /** Default for every wait, ms (default 5000). */
  waitMs?: number;
  /** The address to listen on and write in Contact/Via (default 127.0.0.1). */
  address?: string;
}

/** The server: a port on 127.0.0.1, or an address and port. */
export type ServerAddress = number | { address: string; port: number };

/** One message the peer sent or received, as parsed or built. */
export interface PeerMessage {
  dir: 'in' | 'out';
  message: SipMessage;
  /** Where it came from or went to (with the flow, on streams). */
  remote: Remote;
  /** A retransmission of a request or response already seen or sent. */
  retransmission: boolean;
  at: number;
}

/**
 * The project's scriptable SIP user agent for tests (STYLE.md §10). It listens on
 * 127.0.0.1:random (or `address`) over UDP, TCP or TLS (its Contact); over streams it also opens connections
 * to the server and takes messages from both kinds of connection alike. It registers, makes
 * calls (`call` → PeerCall) and takes them (`nextIncomingCall` → IncomingCall), answers
 * in-dialog requests (200 by default), ACKs what it must (2xx in the dialog layer, non-2xx in
 * the transaction, RFC 3261 §17.1.1.3), retransmits over UDP, and records every message in
 * `messages`. Every wait has a timeout whose error lists the last messages seen.
 *
 *   const callee = await SipPeer.start({ transport: 'TCP', user: '1002' });
 *   await callee.register(server.port);
 *   const call = caller.call(server.port, '1002', { sdp });   // PeerCall
 *   const incoming = await callee.nextIncomingCall();          // IncomingCall
 *   incoming.ring();
 *   await incoming.answer(answerSdp);                           // resolves with the ACK
 *   expect((await call.final()).status).toBe(200);
 *   await call.bye();
 *   await incoming.byeReceived();
 */
export class SipPeer implements PeerCore {
  readonly messages: PeerMessage[] = [];
  /** Sends that failed, messages that did not parse: a test may assert there are none. */
  readonly problems: string[] = [];
  readonly waiter: Waiter;
  readonly transport: PeerTransportName;
  readonly user: string;
  readonly t1: number;
  readonly waitMs: number;
  /** How out-of-dialog OPTIONS (e.g. the server's OOS check) are answered. */
  optionsAnswer: number | 'ignore' = 200;
  /** Send 100 Trying as soon as an INVITE arrives; off, the INVITE gets nothing until the test answers. */
  autoTrying = true;
  private net!: PeerTransport;
  private readonly clients = new Map<string, PeerClientTx>();
  private readonly servers = new Map<string, PeerServerTx>();
  private readonly calls: DialogCall[] = [];
  private readonly incoming: IncomingCall[] = [];
  private readonly incomingTaken = new Set<IncomingCall>();
  /** CSeq of each registration (by Call-ID) the peer made. */
  private readonly registerSeqs = new Map<string, number>();
  readonly address: string;
  private readonly registerCallId: string;

  private constructor(opts: SipPeerOptions) {
    this.transport = opts.transport ?? 'UDP';
    this.user = opts.user;
    this.address = opts.address ?? '127.0.0.1';
    this.registerCallId = `${random(8)}@${this.address}`;
    this.t1 = opts.t1 ?? 500;
    this.waitMs = opts.waitMs ?? 5000;
    this.waiter = new Waiter(() => `peer ${this.user}/${this.transport} saw: ${this.summary()}`);
  }

  static async start(opts: SipPeerOptions): Promise<SipPeer> {
    const peer = new SipPeer(opts);
    peer.net = await PeerTransport.listen(
      peer.transport,
      {
        message: (msg, from) => peer.onMessage(msg, from),
        garbage: (reason, from) => peer.problem(`unparsable message from ${from.address}:${from.port}: ${reason}`),
        flowChanged: () => peer.waiter.notify(),
      },
      opts.tls,
      peer.address,
    );
    return peer;
  }

  get port(): number {
    return this.net.port;
  }

  contact(): string {
    return `<sip:${this.user}@${this.address}:${this.port};transport=${this.transport.toLowerCase()}>`;
  }

  via(branch: string): string {
    return `SIP/2.0/${this.transport} ${this.address}:${this.port};branch=${branch};rport`;
  }

  /** The peer's TCP/TLS connections, accepted and opened, open or closed. */
  flows(): PeerFlow[] {
    return this.net.flows();
  }

  flowOpen(flowId: string): boolean {
    return this.net.flows().some((f) => f.id === flowId && f.open);
  }

  /** Destroys one connection (a crashed phone, a firewall that forgot it). */
  dropFlow(flowId: string): void {
    this.net.dropFlow(flowId);
  }

  /**
   * REGISTER with the server (Contact = the peer's listening port); throws unless 200. `to` a
   * Remote with a flowId: on that connection (see connect()). `contactParams` go after the
   * Contact (e.g. RFC 5626 `;+sip.instance=…;reg-id=1`); `callId`: a registration of its own
   * (an outbound flow has one per reg-id), with its own CSeq.
   */
  async register(server: ServerAddress | Remote, opts: { expires?: number; headers?: SipHeader[]; contactParams?: string; callId?: string } = {}): Promise<SipResponse> {
    const res = await this.tryRegister(server, opts);
    if (res.status !== 200) throw new Error(`REGISTER ${this.user} got ${res.status} ${res.reason}`);
    return res;
  }

  /** REGISTER as register() does, whatever the answer. */
  async tryRegister(server: ServerAddress | Remote, opts: { expires?: number; headers?: SipHeader[]; contactParams?: string; callId?: string } = {}): Promise<SipResponse> {
    const to = typeof server === 'object' && 'transport' in server ? server : this.remote(server);
    const aor = `<sip:${this.user}@${to.address}>`;
    const callId = opts.callId ?? this.registerCallId;
    const cseq = (this.registerSeqs.get(callId) ?? 0) + 1;
    this.registerSeqs.set(callId, cseq);
    const req = this.newRequest('REGISTER', `sip:${to.address}:${to.port}`, {
      to: aor,
      callId,
      cseq,
      headers: [{ name: 'Expires', value: String(opts.expires ?? 600) }, ...(opts.headers ?? [])],
    });
    if (opts.contactParams !== undefined) {
      const contact = req.headers.find((h) => h.name === 'Contact');
      if (contact) contact.value = `${this.contact()}${opts.contactParams}`;
    }
    return this.sendRequest(req, to).waitFinal();
  }

  /** Opens a new connection to the server (TCP/TLS), whatever is open already: a Remote naming it. */
  connect(server: ServerAddress): Promise<Remote> {
    return this.net.connect(this.remote(server));
  }


  /** INVITE sip:number@server with `sdp`; the PeerCall follows the call from there. */
  call(server: ServerAddress, number: string, opts: MessageOptions & { sdp?: string | Buffer } = {}): PeerCall {
    const to = this.remote(server);
    const transportParam = this.transport === 'UDP' ? '' : `;transport=${this.transport.toLowerCase()}`;
    const req = this.newRequest('INVITE', `sip:${number}@${to.address}:${to.port}${transportParam}`, {
      ...opts,
      to: `<sip:${number}@${to.address}>`,
      ...(opts.sdp !== undefined ? { body: opts.sdp } : {}),
    });
    const call = new PeerCall(this, req, to);
    this.calls.push(call);
    return call;
  }

  /**
   * OPTIONS to the server itself; resolves with the final response. Also a barrier: over one
   * flow, whatever the server sent this peer before answering has been handled by then.
   */
  options(server: ServerAddress): Promise<SipResponse> {
    const to = this.remote(server);
    return this.sendRequest(this.newRequest('OPTIONS', `sip:${to.address}:${to.port}`), to).waitFinal();
  }

  /** The next call to this peer not yet returned, waiting up to `ms`. */
  nextIncomingCall(ms = this.waitMs): Promise<IncomingCall> {
    return this.waiter.until(`an incoming INVITE to ${this.user}`, ms, () => {
      const call = this.incoming.find((c) => !this.incomingTaken.has(c));
      if (call) this.incomingTaken.add(call);
      return call;
    });
  }

  /** An out-of-dialog request from this peer: new Call-ID, From tag and branch. */
  newRequest(method: string, uri: string, opts: MessageOptions & { to?: string; callId?: string; cseq?: number } = {}): SipRequest {
    const { headers: extra, body } = withBody(opts);
    const headers: SipHeader[] = [
      { name: 'Via', value: this.via(newBranch()) },
      { name: 'Max-Forwards', value: '70' },
      { name: 'From', value: `<sip:${this.user}@${this.address}>;tag=${newTag()}` },
      { name: 'To', value: opts.to ?? `<${uri}>` },
      { name: 'Call-ID', value: opts.callId ?? `${random(8)}@${this.address}` },
      { name: 'CSeq', value: `${opts.cseq ?? 1} ${method}` },
      ...(['INVITE', 'REGISTER', 'UPDATE', 'SUBSCRIBE'].includes(method) ? [{ name: 'Contact', value: this.contact() }] : []),
      ...extra,
    ];
    return { kind: 'request', method, uri, version: SIP_VERSION, headers, body };
  }

  sendRequest(req: SipRequest, to: Remote | ServerAddress, onResponse?: (res: SipResponse, tx: PeerClientTx) => void): PeerClientTx {
    const tx = new PeerClientTx(this, req, typeof to === 'object' && 'transport' in to ? to : this.remote(to), onResponse);
    this.clients.set(`${branchOf(req)}|${req.method}`, tx);
    tx.start();
    return tx;
  }

  async transmit(msg: SipMessage, to: Remote, retransmission = false): Promise<Remote> {
    const record: PeerMessage = { dir: 'out', message: msg, remote: to, retransmission, at: Date.now() };
    this.messages.push(record);
    record.remote = await this.net.send(serializeMessage(msg), to);
    return record.remote;
  }

  /** Bytes as they are, not recorded: for messages the peer would never build. */
  async sendRaw(bytes: string | Buffer, to: Remote | ServerAddress): Promise<Remote> {
    return this.net.send(typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes, typeof to === 'object' && 'transport' in to ? to : this.remote(to));
  }

  /** Requests of `method` received, retransmissions left out. */
  received(method: string): SipRequest[] {
    return this.messages.flatMap((m) => (m.dir === 'in' && !m.retransmission && m.message.kind === 'request' && m.message.method === method ? [m.message] : []));
  }

  /** Responses received to requests of `method` (by CSeq), retransmissions left out. */
  responses(method: string): SipResponse[] {
    return this.messages.flatMap((m) => (m.dir === 'in' && !m.retransmission && m.message.kind === 'response' && cseqMethod(m.message) === method ? [m.message] : []));
  }

  /** Requests of `method` this peer sent, retransmissions left out. */
  sent(method: string): SipRequest[] {
    return this.messages.flatMap((m) => (m.dir === 'out' && !m.retransmission && m.message.kind === 'request' && m.message.method === method ? [m.message] : []));
  }

  /** The first recorded message (from index `from`) that matches, waiting up to `ms`. */
  waitForMessage(what: string, match: (m: PeerMessage) => boolean, ms = this.waitMs, from = 0): Promise<PeerMessage> {
    return this.waiter.until(what, ms, () => this.messages.slice(from).find(match));
  }

  problem(what: string): void {
    this.problems.push(what);
    this.waiter.notify();
  }

  async close(): Promise<void> {
    for (const tx of this.clients.values()) tx.stop();
    for (const tx of this.servers.values()) tx.stop();
    this.waiter.close(`peer ${this.user} closed`);
    await this.net.close();
  }

  private remote(server: ServerAddress): Remote {
    return typeof server === 'number'
      ? { transport: this.transport, address: '127.0.0.1', port: server }
      : { transport: this.transport, address: server.address, port: server.port };
  }

  private onMessage(msg: SipMessage, from: Remote): void {
    const record: PeerMessage = { dir: 'in', message: msg, remote: from, retransmission: false, at: Date.now() };
    this.messages.push(record);
    try {
      if (msg.kind === 'response') this.onResponse(msg, record);
      else this.onRequest(msg, from, record);
    } catch (err) {
      this.problem(`failed on ${summarize(msg)}: ${err instanceof Error ? err.message : String(err)}`);
    }
    this.waiter.notify();
  }

  private onResponse(res: SipResponse, record: PeerMessage): void {
    const tx = this.clients.get(`${branchOf(res)}|${cseqMethod(res)}`);
    if (!tx) {
      this.problem(`stray response ${summarize(res)}`);
      return;
    }
    const toTag = tagOf(getHeaderValues(res, 'to')[0]);
    record.retransmission = tx.responses.some((r) => r.status === res.status && tagOf(getHeaderValues(r, 'to')[0]) === toTag);
    tx.receive(res);
  }

  private onRequest(req: SipRequest, from: Remote, record: PeerMessage): void {
    const branch = branchOf(req);
    if (req.method === 'ACK') {
      const inviteTx = this.servers.get(`${branch}|INVITE`);
      const final = inviteTx?.final;
      if (inviteTx && final && final.status >= 300) {
        record.retransmission = inviteTx.ack !== undefined;
        inviteTx.noteAck(req);
        return;
      }
      const call = this.calls.find((c) => c.matches(req));
      if (call) call.onAck(req);
      else this.problem(`ACK matching nothing: ${summarize(req)}`);
      return;
    }
    const key = `${branch}|${req.method}`;
    const existing = this.servers.get(key);
    if (existing) {
      record.retransmission = true;
      existing.from = from;
      existing.retransmitLast();
      return;
    }
    const tx = new PeerServerTx(this, req, from);
    this.servers.set(key, tx);
    if (req.method === 'CANCEL') {
      const inviteTx = this.servers.get(`${branch}|INVITE`);
      const call = this.incoming.find((c) => c.tx === inviteTx);
      if (call) call.onCancel(tx);
      else tx.respond(createResponse(req, 481, undefined, { toTag: newTag() }));
      return;
    }
    if (tagOf(getHeaderValues(req, 'to')[0]) !== undefined) {
      const call = this.calls.find((c) => c.matches(req));
      if (call) call.onRequest(tx);
      else tx.respond(createResponse(req, 481));
      return;
    }
    if (req.method === 'INVITE') {
      const call = new IncomingCall(this, tx);
      this.calls.push(call);
      this.incoming.push(call);
      return;
    }
    if (req.method === 'OPTIONS') {
      if (this.optionsAnswer !== 'ignore') tx.respond(createResponse(req, this.optionsAnswer, undefined, { toTag: newTag() }));
      return;
    }
    tx.respond(createResponse(req, 405, undefined, { toTag: newTag(), headers: [{ name: 'Allow', value: 'INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE' }] }));
  }

  private summary(): string {
    const last = this.messages.slice(-10).map((m) => `${m.dir === 'in' ? '←' : '→'} ${summarize(m.message)}${m.retransmission ? ' (again)' : ''}`);
    const problems = this.problems.length > 0 ? `; problems: ${this.problems.join(' | ')}` : '';
    return `${last.length > 0 ? last.join(', ') : 'no messages'}${problems}`;
  }
}

/** "INVITE sip:…" or "200 OK (INVITE)", for error messages. */
export function summarize(msg: SipMessage): string {
  if (msg.kind === 'request') return `${msg.method} ${msg.uri}`;
  let method = '?';
  try {
    method = cseqMethod(msg);
  } catch {
    method = 'no CSeq';
  }
  return `${msg.status} ${msg.reason} (${method})`;
}
