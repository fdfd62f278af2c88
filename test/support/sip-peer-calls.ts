import { cseqOf } from '../../src/sip/cseq.js';
import { canonicalHeaderName, SIP_VERSION, type SipHeader, type SipRequest, type SipResponse } from '../../src/sip/message.js';
import { createResponse } from '../../src/sip/response.js';
import { DialogCall, PeerDialog, type MessageOptions } from './sip-peer-dialog.js';
import { newTag, type PeerClientTx, type PeerCore, type PeerServerTx } from './sip-peer-transactions.js';

/**
 * A call the peer makes: the INVITE's client transaction, its responses, and the dialog a
 * 2xx makes (the peer ACKs the 2xx at once). `cancel()` sends CANCEL for the INVITE.
 */
export class PeerCall extends DialogCall {
  readonly tx: PeerClientTx;
  private cancelTx: PeerClientTx | undefined;

  constructor(core: PeerCore, invite: SipRequest, to: Parameters<PeerCore['sendRequest']>[1]) {
    super(core);
    this.tx = core.sendRequest(invite, to, (res) => this.onResponse(res));
  }

  get invite(): SipRequest {
    return this.tx.request;
  }

  /** Every response to the INVITE, retransmissions included, in order. */
  get responses(): SipResponse[] {
    return this.tx.responses;
  }

  /** The final response to the INVITE, waiting up to `ms`. */
  final(ms?: number): Promise<SipResponse> {
    return this.tx.waitFinal(ms);
  }

  /** The first response to the INVITE with `status` (e.g. 180), waiting up to `ms`. */
  waitStatus(status: number, ms?: number): Promise<SipResponse> {
    return this.tx.waitStatus(status, ms);
  }

  /**
   * CANCEL for the INVITE (§9.1): its Request-URI, top Via (same branch), Route, From, To,
   * Call-ID and CSeq number; resolves with the final response to the CANCEL.
   */
  cancel(opts: { headers?: SipHeader[] } = {}, ms?: number): Promise<SipResponse> {
    const inv = this.tx.request;
    const keep = (name: string): SipHeader[] => inv.headers.filter((h) => canonicalHeaderName(h.name) === name);
    const cancel: SipRequest = {
      kind: 'request',
      method: 'CANCEL',
      uri: inv.uri,
      version: SIP_VERSION,
      headers: [
        ...keep('via').slice(0, 1),
        { name: 'Max-Forwards', value: '70' },
        ...keep('route'),
        ...keep('from'),
        ...keep('to'),
        ...keep('call-id'),
        { name: 'CSeq', value: `${cseqOf(inv).seq} CANCEL` },
        ...(opts.headers ?? []),
      ],
      body: Buffer.alloc(0),
    };
    this.cancelTx = this.core.sendRequest(cancel, this.tx.sentTo);
    return this.cancelTx.waitFinal(ms);
  }

  private onResponse(res: SipResponse): void {
    if (res.status < 200) {
      if (res.status > 100 && this.state === 'calling') this.state = 'ringing';
    } else if (res.status < 300) {
      this.dialog ??= PeerDialog.asUac(this.tx.request, res, this.tx.sentTo);
      if (this.state !== 'terminated') this.state = 'established';
      this.ack2xx(res);
    } else {
      this.state = 'terminated';
    }
    this.core.waiter.notify();
  }
}

/** What an incoming call does when a CANCEL arrives before its final response. */
export type CancelBehaviour =
  /** 200 to the CANCEL and 487 to the INVITE (RFC 3261 §9.2), the default. */
  | 'terminate'
  /** 200 to the CANCEL only: the test decides what the INVITE gets (e.g. a late 200). */
  | 'ok-only'
  /** No answer at all. */
  | 'ignore';

/**
 * A call to the peer: the INVITE's server transaction (100 Trying sent at once unless the
 * peer's `autoTrying` is off), answered by the test with `ring`, `answer` or `reject`. A
 * CANCEL is answered per `cancelBehaviour`.
 */
export class IncomingCall extends DialogCall {
  readonly localTag = newTag();
  cancelBehaviour: CancelBehaviour = 'terminate';
  /** The CANCEL received, if any. */
  cancelRequest: SipRequest | undefined;

  constructor(
    core: PeerCore,
    readonly tx: PeerServerTx,
  ) {
    super(core);
    if (core.autoTrying) tx.respond(createResponse(tx.request, 100));
  }

  get invite(): SipRequest {
    return this.tx.request;
  }

  /** A provisional response with our tag and Contact (180 Ringing by default). */
  ring(status = 180, opts: MessageOptions = {}): void {
    this.respond(this.tx, status, opts, this.localTag);
    this.state = 'ringing';
  }

  /** 200 OK with `sdp`; resolves with the ACK (the 200 is retransmitted over UDP until it). */
  answer(sdp: string | Buffer, opts: MessageOptions = {}, ms?: number): Promise<SipRequest> {
    this.dialog = PeerDialog.asUas(this.tx.request, this.localTag, this.tx.from);
    this.respond(this.tx, 200, { ...opts, body: sdp }, this.localTag);
    this.state = 'established';
    return this.tx.waitAck(ms);
  }

  /** A final error response (486 Busy Here by default); resolves with the server's ACK for it. */
  reject(status = 486, opts: MessageOptions = {}, ms?: number): Promise<SipRequest> {
    this.respond(this.tx, status, opts, this.localTag);
    this.state = 'terminated';
    return this.tx.waitAck(ms);
  }

  /** The CANCEL for this INVITE, waiting up to `ms`. */
  cancelled(ms = this.core.waitMs): Promise<SipRequest> {
    return this.core.waiter.until('a CANCEL', ms, () => this.cancelRequest);
  }

  /** Called by the peer for a CANCEL that matched this INVITE. */
  onCancel(cancelTx: PeerServerTx): void {
    this.cancelRequest = cancelTx.request;
    if (this.cancelBehaviour !== 'ignore') cancelTx.respond(createResponse(cancelTx.request, 200, undefined, { toTag: this.localTag }));
    if (this.cancelBehaviour === 'terminate' && !this.tx.final) {
      this.respond(this.tx, 487, {}, this.localTag);
      this.state = 'terminated';
    }
    this.core.waiter.notify();
  }

  protected override inviteTransactions(): PeerServerTx[] {
    return [this.tx, ...super.inviteTransactions()];
  }
}
