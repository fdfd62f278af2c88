/**
 * The calls layer on a ManualClock, without sockets: a real TransactionLayer and UaCore over a
 * FakeTransport, wired to CallManager, InDialogRelay, CallControl, PhoneTransfer and MakeCall
 * the way server.ts wires them. Phones are plain objects that put requests and responses into
 * the transaction layer as if they came from their address, and read what the server sent them
 * from the FakeTransport.
 */
import { CallControl } from '../../../src/calls/call-control.js';
import type { CallEvent, CallEvents } from '../../../src/calls/call-events.js';
import { CallManager } from '../../../src/calls/call-manager.js';
import { InDialogRelay } from '../../../src/calls/in-dialog-relay.js';
import { MakeCall } from '../../../src/calls/make-call.js';
import { PhoneTransfer } from '../../../src/calls/phone-transfer.js';
import { Router } from '../../../src/calls/routing.js';
import { dnSchema } from '../../../src/config/schema.js';
import { contactDestination } from '../../../src/dialog/contact-destination.js';
import { UaCore } from '../../../src/dialog/ua-core.js';
import { Directory } from '../../../src/directory/directory.js';
import { MemoryStore } from '../../../src/registrar/memory-store.js';
import type { Registrar } from '../../../src/registrar/registrar.js';
import { getHeaderValues, SIP_VERSION, type SipHeader, type SipRequest, type SipResponse } from '../../../src/sip/message.js';
import { tagOf } from '../../../src/sip/name-addr.js';
import { createResponse } from '../../../src/sip/response.js';
import { TransactionLayer } from '../../../src/transaction/transaction-layer.js';
import type { Source, TransportName } from '../../../src/transport/types.js';
import { silentLogger, type Logger } from '../../../src/util/logger.js';
import { FakeTransport } from '../../support/fake-transport.js';
import { ManualClock } from '../../support/manual-clock.js';

export const T1 = 500;
export const T2 = 4000;
export const SERVER = '127.0.0.1';

export const SDP_A = Buffer.from('v=0\r\no=a 1 1 IN IP4 192.0.2.11\r\ns=-\r\nc=IN IP4 192.0.2.11\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\na=sendrecv\r\n');
export const SDP_B = Buffer.from('v=0\r\no=b 1 1 IN IP4 192.0.2.12\r\ns=-\r\nc=IN IP4 192.0.2.12\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\na=sendrecv\r\n');
export const SDP_C = Buffer.from('v=0\r\no=c 1 1 IN IP4 192.0.2.13\r\ns=-\r\nc=IN IP4 192.0.2.13\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=sendrecv\r\n');

type DnSpec = { type: 'extension' | 'trunk' | 'voip-service'; contact: string; prefix?: string; priority?: number };

/** Three phones with fixed contacts, and two trunks for numbers starting 9 (the first preferred). */
export const DEFAULT_DNS: Record<string, DnSpec> = {
  '1001': { type: 'extension', contact: 'sip:1001@192.0.2.11:5060' },
  '1002': { type: 'extension', contact: 'sip:1002@192.0.2.12:5060' },
  '1003': { type: 'extension', contact: 'sip:1003@192.0.2.13:5060' },
  gw1: { type: 'trunk', contact: 'sip:gw1@192.0.2.31:5060', prefix: '9', priority: 1 },
  gw2: { type: 'trunk', contact: 'sip:gw2@192.0.2.32:5060', prefix: '9', priority: 2 },
};

export type Rig = ReturnType<typeof callRig>;

export function callRig(opts: { dns?: Record<string, DnSpec>; transferOutcomeMs?: number; transferorByeMs?: number } = {}) {
  const clock = new ManualClock();
  const transport = new FakeTransport();
  const dnSpecs = opts.dns ?? DEFAULT_DNS;
  const directory = new Directory(Object.fromEntries(Object.entries(dnSpecs).map(([n, o]) => [n, dnSchema.parse(o)])), clock, silentLogger);
  const registrar = {
    targetOf(dn: string) {
      const contact = directory.get(dn)?.options.contact;
      const destination = contact === undefined ? undefined : contactDestination(contact, 'UDP');
      return contact !== undefined && destination ? { requestUri: contact, destination } : undefined;
    },
  };
  const router = new Router(directory, registrar as unknown as Registrar);
  const records = new MemoryStore();
  const timers = { t1: T1, t2: T2 };
  /** What the layers logged at error level (a call code bug shows here: a listener or transaction user that threw). */
  const errors: string[] = [];
  const log: Logger = {
    ...silentLogger,
    error: (obj: object, msg?: string) => {
      const err = (obj as { err?: unknown }).err;
      errors.push(`${msg ?? ''}${err instanceof Error ? `: ${err.message}` : ''}`);
    },
    child: () => log,
  };
  const ua = new UaCore(log);
  const contactFor = (user: string, t: TransportName): string => `sip:${encodeURIComponent(user)}@${SERVER}:5060;transport=${t.toLowerCase()}`;
  const aorFor = (user: string): string => `sip:${user}@${SERVER}`;
  const dnAt = (address: string): string | undefined => Object.entries(dnSpecs).find(([, o]) => o.contact.includes(`@${address}:`))?.[0];
  const layer = new TransactionLayer({
    clock,
    transport,
    timers: { T1, T2, T4: 5000 },
    log,
    onRequest: (tx, req) => ua.onRequest(tx, req),
    onCancel: (cancelTx, inviteTx) => calls.onCancel(cancelTx, inviteTx),
    onAck: (ack) => calls.onAck(ack),
  });
  const calls: CallManager = new CallManager({
    transactions: layer,
    router,
    directory,
    records,
    clock,
    log,
    timers,
    contactFor,
    aorFor,
    // The caller is the DN whose contact is at the source address; anybody else calls as who its From says.
    admit: (req, source) => {
      const dn = dnAt(source.address) ?? null;
      const user = /sip:([^@]+)@/.exec(getHeaderValues(req, 'from')[0] ?? '')?.[1] ?? 'anonymous';
      return { ok: true, caller: { dn, presented: dn ?? user } };
    },
  });
  const makeCall = new MakeCall({ calls, t1: T1, transactions: layer, router, clock, log, contactFor, aorFor });
  const control = new CallControl({ calls, router, clock, log, contactFor, ...(opts.transferOutcomeMs !== undefined ? { transferOutcomeMs: opts.transferOutcomeMs } : {}) });
  const phoneTransfers = new PhoneTransfer({ calls, router, clock, log, ...(opts.transferorByeMs !== undefined ? { transferorByeMs: opts.transferorByeMs } : {}) });
  const relay = new InDialogRelay(calls, control, phoneTransfers, log);
  ua.handle('INVITE', (tx, req) => calls.onInvite(tx, req));
  ua.handleInDialog((tx, req) => relay.onRequest(tx, req), ['BYE', 'INVITE', 'UPDATE', 'INFO', 'OPTIONS', 'NOTIFY', 'REFER']);

  const events: { name: keyof CallEvents; e: CallEvent }[] = [];
  for (const name of ['EventDialing', 'EventRinging', 'EventEstablished', 'EventHeld', 'EventRetrieved', 'EventReleased'] as const) {
    calls.events.on(name, (e) => events.push({ name, e }));
  }

  const rig = {
    clock,
    transport,
    layer,
    directory,
    records,
    calls,
    makeCall,
    control,
    phoneTransfers,
    events,
    errors,
    /** The events of one name, in order. */
    eventsNamed<N extends keyof CallEvents>(name: N): CallEvents[N][] {
      return events.filter((x) => x.name === name).map((x) => x.e as CallEvents[N]);
    },
    /** A phone (or trunk) at the address of DN `dn`'s contact; `address` for a caller that is no DN. */
    phone(dn: string, address?: string): Phone {
      const at = address ?? /@([^:;>]+)/.exec(dnSpecs[dn]?.contact ?? '')?.[1];
      if (at === undefined) throw new Error(`no address for ${dn}`);
      return new Phone(rig, dn, at);
    },
  };
  return rig;
}

let seq = 0;
const next = (): number => ++seq;

/** One party's side of a dialog with the server, to send requests in it. */
export class PeerDialog {
  constructor(
    readonly phone: Phone,
    readonly callId: string,
    /** Our From value in requests we send (with our tag). */
    readonly local: string,
    /** Their To value (with the server's tag). */
    readonly remote: string,
    public cseq: number,
  ) {}

  get localTag(): string | undefined {
    return tagOf(this.local);
  }

  get remoteTag(): string | undefined {
    return tagOf(this.remote);
  }

  /** A new request in the dialog (ACK takes `cseq`, the INVITE's). */
  request(method: string, opts: { body?: Buffer; headers?: SipHeader[]; cseq?: number } = {}): SipRequest {
    const cseq = opts.cseq ?? (method === 'ACK' ? this.cseq : ++this.cseq);
    const headers: SipHeader[] = [
      { name: 'Via', value: `SIP/2.0/UDP ${this.phone.address}:5060;branch=z9hG4bK-${this.phone.dn}-${next()}` },
      { name: 'Max-Forwards', value: '70' },
      { name: 'From', value: this.local },
      { name: 'To', value: this.remote },
      { name: 'Call-ID', value: this.callId },
      { name: 'CSeq', value: `${cseq} ${method}` },
      { name: 'Contact', value: `<sip:${this.phone.dn}@${this.phone.address}:5060>` },
      ...(opts.body && opts.body.length > 0 ? [{ name: 'Content-Type', value: 'application/sdp' }] : []),
      ...(opts.headers ?? []),
    ];
    return { kind: 'request', method, uri: `sip:${SERVER}:5060`, version: SIP_VERSION, headers, body: opts.body ?? Buffer.alloc(0) };
  }

  /** Sends a new request in the dialog; returns it. */
  send(method: string, opts: { body?: Buffer; headers?: SipHeader[]; cseq?: number } = {}): SipRequest {
    const req = this.request(method, opts);
    this.phone.deliver(req);
    return req;
  }
}

/** A SIP party at one address (port 5060, UDP). */
export class Phone {
  constructor(
    private readonly rig: { transport: FakeTransport; layer: TransactionLayer },
    readonly dn: string,
    readonly address: string,
  ) {}

  get source(): Source {
    return { transport: 'UDP', address: this.address, port: 5060, localAddress: SERVER, localPort: 5060 };
  }

  /** Hands a message to the server as coming from this phone. */
  deliver(message: SipRequest | SipResponse): void {
    this.rig.layer.receive({ message, source: this.source });
  }

  /** Calls `to` with `sdp` as the offer; returns the INVITE. */
  invite(to: string, opts: { sdp?: Buffer; allow?: string } = {}): SipRequest {
    const n = next();
    const body = opts.sdp ?? Buffer.alloc(0);
    const headers: SipHeader[] = [
      { name: 'Via', value: `SIP/2.0/UDP ${this.address}:5060;branch=z9hG4bK-${this.dn}-${n}` },
      { name: 'Max-Forwards', value: '70' },
      { name: 'From', value: `<sip:${this.dn}@${SERVER}>;tag=${this.dn}-tag-${n}` },
      { name: 'To', value: `<sip:${to}@${SERVER}>` },
      { name: 'Call-ID', value: `${this.dn}-call-${n}@${this.address}` },
      { name: 'CSeq', value: '1 INVITE' },
      { name: 'Contact', value: `<sip:${this.dn}@${this.address}:5060>` },
      ...(opts.allow !== undefined ? [{ name: 'Allow', value: opts.allow }] : []),
      ...(body.length > 0 ? [{ name: 'Content-Type', value: 'application/sdp' }] : []),
    ];
    const req: SipRequest = { kind: 'request', method: 'INVITE', uri: `sip:${to}@${SERVER}`, version: SIP_VERSION, headers, body };
    this.deliver(req);
    return req;
  }

  /** CANCEL of our INVITE `invite` (same branch, §9.1). */
  cancel(invite: SipRequest): SipRequest {
    const keep = new Set(['via', 'from', 'to', 'call-id', 'max-forwards']);
    const headers = invite.headers.filter((h) => keep.has(h.name.toLowerCase()));
    headers.push({ name: 'CSeq', value: '1 CANCEL' });
    const req: SipRequest = { kind: 'request', method: 'CANCEL', uri: invite.uri, version: SIP_VERSION, headers, body: Buffer.alloc(0) };
    this.deliver(req);
    return req;
  }

  /** The ACK of a non-2xx final response to our INVITE (same branch; part of the transaction). */
  ackFailure(invite: SipRequest, res: SipResponse): void {
    const keep = new Set(['via', 'from', 'call-id', 'max-forwards']);
    const headers = invite.headers.filter((h) => keep.has(h.name.toLowerCase()));
    headers.push({ name: 'To', value: getHeaderValues(res, 'to')[0] ?? '' }, { name: 'CSeq', value: '1 ACK' });
    this.deliver({ kind: 'request', method: 'ACK', uri: invite.uri, version: SIP_VERSION, headers, body: Buffer.alloc(0) });
  }

  /** Requests the server sent to this phone (retransmissions included), optionally of one method. */
  received(method?: string): SipRequest[] {
    return this.rig.transport.sent.flatMap((s) =>
      s.kind === 'request' && s.dest.address === this.address && (method === undefined || s.message.method === method) ? [s.message] : [],
    );
  }

  /** The last request of `method` the server sent to this phone. */
  last(method: string): SipRequest {
    const all = this.received(method);
    const req = all[all.length - 1];
    if (!req) throw new Error(`${this.dn} received no ${method}`);
    return req;
  }

  /** Responses the server sent to this phone (retransmissions included), optionally only those to `req`. */
  responses(req?: SipRequest): SipResponse[] {
    const key = req && `${getHeaderValues(req, 'call-id')[0]} ${getHeaderValues(req, 'cseq')[0]}`;
    return this.rig.transport.sent.flatMap((s) =>
      s.kind === 'response' && s.source.address === this.address && (key === undefined || `${getHeaderValues(s.message, 'call-id')[0]} ${getHeaderValues(s.message, 'cseq')[0]}` === key)
        ? [s.message]
        : [],
    );
  }

  /** The statuses of the responses to `req`, in the order sent. */
  statuses(req: SipRequest): number[] {
    return this.responses(req).map((r) => r.status);
  }

  /** Answers a request the server sent us; our To tag is `tag` (default: one per phone). */
  reply(req: SipRequest, status: number, opts: { body?: Buffer; tag?: string; headers?: SipHeader[] } = {}): SipResponse {
    const headers: SipHeader[] = [...(opts.headers ?? [])];
    if (status > 100 && status < 300) headers.push({ name: 'Contact', value: `<sip:${this.dn}@${this.address}:5060>` });
    if (opts.body && opts.body.length > 0) headers.push({ name: 'Content-Type', value: 'application/sdp' });
    const res = createResponse(req, status, undefined, { toTag: opts.tag ?? `${this.dn}-tag`, headers, ...(opts.body ? { body: opts.body } : {}) });
    this.deliver(res);
    return res;
  }

  /** Our dialog as the caller: from our INVITE and the server's response with its tag. */
  callerDialog(invite: SipRequest): PeerDialog {
    const res = this.responses(invite).find((r) => r.status > 100 && tagOf(getHeaderValues(r, 'to')[0] ?? '') !== undefined);
    if (!res) throw new Error(`${this.dn}: no response with a To tag to its INVITE`);
    return new PeerDialog(this, getHeaderValues(invite, 'call-id')[0] ?? '', getHeaderValues(invite, 'from')[0] ?? '', getHeaderValues(res, 'to')[0] ?? '', 1);
  }

  /** Our dialog as the callee of the server's INVITE `invite`, which we answered with tag `tag`. */
  calleeDialog(invite: SipRequest, tag = `${this.dn}-tag`): PeerDialog {
    return new PeerDialog(this, getHeaderValues(invite, 'call-id')[0] ?? '', `${getHeaderValues(invite, 'to')[0] ?? ''};tag=${tag}`, getHeaderValues(invite, 'from')[0] ?? '', 0);
  }
}

/**
 * An established call: 1001 calls `callee` (default 1002) offering SDP_A, the callee rings and
 * answers with SDP_B, 1001 ACKs. `allow` / `calleeAllow`: the parties' Allow headers.
 */
export function establish(rig: Rig, opts: { callee?: string; allow?: string; calleeAllow?: string } = {}) {
  const callee = opts.callee ?? '1002';
  const a = rig.phone('1001');
  const b = rig.phone(callee);
  const invite = a.invite(callee, { sdp: SDP_A, ...(opts.allow !== undefined ? { allow: opts.allow } : {}) });
  const bInvite = b.last('INVITE');
  b.reply(bInvite, 180);
  b.reply(bInvite, 200, { body: SDP_B, ...(opts.calleeAllow !== undefined ? { headers: [{ name: 'Allow', value: opts.calleeAllow }] } : {}) });
  const aDialog = a.callerDialog(invite);
  aDialog.send('ACK', { cseq: 1 });
  const call = rig.calls.all().find((c) => c.from === '1001' && c.to === callee);
  if (!call || call.state !== 'established') throw new Error('the call did not come up');
  return { a, b, invite, bInvite, aDialog, bDialog: b.calleeDialog(bInvite), call };
}

/** Lets pending promise callbacks (a re-INVITE's or a REFER's outcome) run. */
export function flush(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
