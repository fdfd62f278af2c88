import { cseqOf } from '../sip/cseq.js';
import { getHeaderValues, SIP_VERSION, type SipHeader, type SipRequest, type SipResponse } from '../sip/message.js';
import { formatNameAddr, parseNameAddr, tagOf } from '../sip/name-addr.js';
import type { Destination, Source, TransportName } from '../transport/types.js';
import { detach } from '../util/detach.js';
import { contactDestination } from './contact-destination.js';

/**
 * One SIP dialog (RFC 3261 §12) as the server holds it on one leg: its identifiers, the
 * local and remote sequence numbers, the remote target and the route set. Builds the
 * in-dialog requests the server sends and checks the CSeq of the ones it receives.
 */
export class Dialog {
  localSeq: number;
  remoteSeq: number | undefined;
  remoteTarget: string;
  /** Where in-dialog requests go: the remote target's address, or the flow the dialog uses. */
  destination: Destination;

  readonly callId: string;
  readonly localTag: string;
  readonly remoteTag: string;
  /** The local URI with display name as in our From (UAC) or their To (UAS), without tag. */
  readonly localUri: string;
  readonly remoteUri: string;
  readonly routeSet: string[];
  readonly localContact: string;

  /** Every string is copied (detach): a dialog lasts as long as its call, the message it came from should not. */
  private constructor(
    callId: string,
    localTag: string,
    remoteTag: string,
    localUri: string,
    remoteUri: string,
    routeSet: string[],
    remoteTarget: string,
    destination: Destination,
    localSeq: number,
    remoteSeq: number | undefined,
    localContact: string,
  ) {
    this.callId = detach(callId);
    this.localTag = detach(localTag);
    this.remoteTag = detach(remoteTag);
    this.localUri = detach(localUri);
    this.remoteUri = detach(remoteUri);
    this.routeSet = routeSet.map(detach);
    this.localContact = detach(localContact);
    this.remoteTarget = detach(remoteTarget);
    this.destination = { ...destination, address: detach(destination.address) };
    this.localSeq = localSeq;
    this.remoteSeq = remoteSeq;
  }

  /** The UAS side (§12.1.1): from the request we answer with a 2xx (or 1xx with tag). */
  static asUas(req: SipRequest, localTag: string, source: Source, localContact: string): Dialog {
    const contact = firstContactUri(req) ?? `sip:${source.address}:${source.port}`;
    const routeSet = getHeaderValues(req, 'record-route');
    return new Dialog(
      one(req, 'call-id'),
      localTag,
      tagOf(one(req, 'from')) ?? '',
      withoutTag(one(req, 'to')),
      withoutTag(one(req, 'from')),
      routeSet,
      contact,
      uasDestination(routeSet[0] ?? contact, source),
      0,
      cseqOf(req).seq,
      localContact,
    );
  }

  /** The UAC side (§12.1.2): from our request and the response that made the dialog. */
  static asUac(req: SipRequest, res: SipResponse, sentTo: Destination, localContact: string): Dialog {
    const contact = firstContactUri(res) ?? req.uri;
    const routeSet = getHeaderValues(res, 'record-route').reverse();
    return new Dialog(
      one(req, 'call-id'),
      tagOf(one(req, 'from')) ?? '',
      tagOf(one(res, 'to')) ?? '',
      withoutTag(one(req, 'from')),
      withoutTag(one(res, 'to')),
      routeSet,
      contact,
      // While the flow the INVITE went on is open, keep using it (a firewall may allow only it);
      // else the first proxy of the route set (loose routing, §12.2.1.1), or the remote target.
      sentTo.flow !== undefined ? sentTo : (hopDestination(routeSet[0] ?? contact, sentTo.transport) ?? sentTo),
      cseqOf(req).seq,
      undefined,
      localContact,
    );
  }

  /**
   * A new in-dialog request (§12.2.1.1); ACK for a 2xx takes the INVITE's CSeq number. No
   * Via: the transaction layer writes it when the request is sent.
   */
  createRequest(method: string, opts: { body?: Buffer; contentType?: string; headers?: SipHeader[]; cseq?: number } = {}): SipRequest {
    const seq = opts.cseq ?? (method === 'ACK' ? this.localSeq : ++this.localSeq);
    const headers: SipHeader[] = [
      { name: 'Max-Forwards', value: '70' },
      ...this.routeSet.map((value) => ({ name: 'Route', value })),
      { name: 'From', value: `${this.localUri};tag=${this.localTag}` },
      { name: 'To', value: `${this.remoteUri};tag=${this.remoteTag}` },
      { name: 'Call-ID', value: this.callId },
      { name: 'CSeq', value: `${seq} ${method}` },
    ];
    if (method === 'INVITE' || method === 'UPDATE') headers.push({ name: 'Contact', value: this.localContact });
    if (opts.body && opts.body.length > 0) headers.push({ name: 'Content-Type', value: opts.contentType ?? 'application/sdp' });
    headers.push(...(opts.headers ?? []));
    return { kind: 'request', method, uri: this.remoteTarget, version: SIP_VERSION, headers, body: opts.body ?? Buffer.alloc(0) };
  }

  /**
   * Checks an incoming in-dialog request's CSeq (§12.2.2): lower than the last one → false
   * (answer 500); otherwise records it. A target refresh updates the remote target.
   */
  acceptRemote(req: SipRequest): boolean {
    const seq = cseqOf(req).seq;
    if (req.method !== 'ACK' && req.method !== 'CANCEL') {
      if (this.remoteSeq !== undefined && seq <= this.remoteSeq) return false;
      this.remoteSeq = seq;
    }
    if (req.method === 'INVITE' || req.method === 'UPDATE') {
      const contact = firstContactUri(req);
      if (contact) this.remoteTarget = detach(contact);
    }
    return true;
  }

  /** True when a request's tags name this dialog (our tag in To, theirs in From). */
  matches(req: SipRequest): boolean {
    return one(req, 'call-id') === this.callId && tagOf(one(req, 'to')) === this.localTag && tagOf(one(req, 'from')) === this.remoteTag;
  }

  get transport(): TransportName {
    return this.destination.transport;
  }
}

function one(msg: { headers: SipHeader[] }, name: string): string {
  return getHeaderValues(msg, name)[0] ?? '';
}

function firstContactUri(msg: { headers: SipHeader[] }): string | undefined {
  const c = getHeaderValues(msg, 'contact')[0];
  if (c === undefined || c.trim() === '*') return undefined;
  try {
    return parseNameAddr(c, 'Contact').uri;
  } catch {
    return undefined;
  }
}

/** A From/To value without its tag parameter, for reuse in the other direction. */
function withoutTag(value: string): string {
  const na = parseNameAddr(value);
  return formatNameAddr({ ...na, params: new Map([...na.params].filter(([name]) => name !== 'tag')) });
}

/** Where a hop goes: a Contact URI, or a route-set entry (a name-addr, `<sip:proxy;lr>`). */
function hopDestination(hop: string, transport: TransportName): Destination | undefined {
  if (!hop.trimStart().startsWith('<')) return contactDestination(hop, transport);
  try {
    return contactDestination(parseNameAddr(hop, 'Record-Route').uri, transport);
  } catch {
    return undefined;
  }
}

/**
 * Requests to the party that started the dialog go on the connection its request came on
 * while that is open, else to the first proxy of the route set, or without one to its
 * Contact address (SPEC §5: its listening port, not the ephemeral port it connected from).
 */
function uasDestination(next: string, source: Source): Destination {
  const d = hopDestination(next, source.transport) ?? { transport: source.transport, address: source.address, port: source.port };
  if (source.flow !== undefined) d.flow = source.flow;
  return d;
}
