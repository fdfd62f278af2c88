import { Dialog } from '../dialog/dialog.js';
import { OkRetransmitter } from '../dialog/ok-retransmitter.js';
import { cseqOf } from '../sip/cseq.js';
import { getHeader, getHeaderValues, type SipHeader, type SipRequest, type SipResponse } from '../sip/message.js';
import { createResponse } from '../sip/response.js';
import { buildCancel } from '../transaction/build-cancel.js';
import type { TransactionLayer } from '../transaction/transaction-layer.js';
import type { ClientTransaction, FinalInfo, ServerTransaction } from '../transaction/types.js';
import { isReliable, type TransportName } from '../transport/types.js';
import type { Clock, TimerHandle } from '../util/clock.js';
import { SipServerError } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import type { RouteTarget } from './routing.js';

/** What a leg needs to act: the layers it sends through, the clock for 2xx retransmission, the server's Contact. */
export interface LegContext {
  transactions: Pick<TransactionLayer, 'sendRequest' | 'sendAck'>;
  clock: Clock;
  log: Logger;
  timers: { t1: number; t2: number };
  /** The server's Contact URI for a leg on `transport`, e.g. sip:1001@127.0.0.1:5060;transport=tcp. */
  contactFor(user: string, transport: TransportName): string;
  /** The type of DN `dn` ('extension', 'trunk', 'voip-service'); undefined for a number that is no DN. */
  typeOf(dn: string): string | undefined;
}

type OnFinal = (res: SipResponse, info: FinalInfo) => void;

/** Sends a request in its own client transaction; `onFinal` gets the final response. undefined: it could not be sent (logged). */
export function sendRequest(ctx: LegContext, req: SipRequest, dest: Dialog['destination'], onFinal: OnFinal, reopen = true): ClientTransaction | undefined {
  try {
    return ctx.transactions.sendRequest(req, dest, { onFinal, reopen });
  } catch (err) {
    ctx.log.error({ err, method: req.method }, 'could not send a request');
    return undefined;
  }
}

/** Sends the CANCEL of a pending INVITE client transaction (§9.1), with extra headers (Reason). */
export function sendCancel(ctx: LegContext, tx: ClientTransaction, headers: SipHeader[]): void {
  if (!tx.active) return;
  tx.noteCancelSent();
  sendRequest(ctx, buildCancel(tx.request, headers), tx.destination, () => undefined, tx.reopen);
}

/**
 * One side of a call: the server's dialog with one party, the 2xx the server retransmits to
 * that party until its ACK, the re-INVITE pending towards it, and whether a dead connection
 * to it may be re-opened. A dialog may move to another call's leg (a transfer) and back.
 */
export abstract class Leg {
  /** The server's dialog with the party, once there is one (and while it belongs to this call). */
  dialog?: Dialog;
  /** Retransmits the server's 2xx to an INVITE or re-INVITE from the party until its ACK. */
  ok?: OkRetransmitter;
  /** The party's Allow header names REFER (SingleStepTransfer then uses REFER). */
  allowsRefer?: boolean;
  /**
   * An INVITE the server sent in this leg's dialog (its own re-INVITE, or one relayed from the
   * other party) has no final response yet: the call takes no other re-INVITE meanwhile (491 to
   * a party, 409 on the API).
   */
  reinvitePending = false;

  protected constructor(protected readonly ctx: LegContext) {}

  /** Whether a dead connection may be re-opened for a request on this leg (not to a voip-service DN, SPEC §5.4). */
  abstract get reopen(): boolean;

  /** Sends a request in the leg's dialog in its own client transaction; `onFinal` gets the final response. */
  send(req: SipRequest, onFinal: OnFinal): ClientTransaction | undefined {
    const dialog = this.dialog;
    if (!dialog) throw new SipServerError('NO_DIALOG', `no dialog to send ${req.method} in`);
    return sendRequest(this.ctx, req, dialog.destination, onFinal, this.reopen);
  }

  /**
   * Sends `req`, an INVITE in the leg's dialog: a re-INVITE is pending on the leg until its
   * final response, and a 2xx is ACKed (§13.2.2.4) before `onFinal` hears of it. Not sent
   * (undefined): the re-INVITE stays pending; the caller decides what becomes of it.
   */
  sendInvite(req: SipRequest, onFinal: OnFinal): ClientTransaction | undefined {
    const dialog = this.dialog;
    const seq = cseqOf(req).seq;
    this.reinvitePending = true;
    return this.send(req, (res, info) => {
      this.reinvitePending = false;
      if (res.status >= 200 && res.status < 300) this.ack(seq, dialog);
      onFinal(res, info);
    });
  }

  /**
   * A re-INVITE from the server itself (HoldCall, RetrieveCall, a transfer) with `sdp` as the
   * offer. `onFinal` hears of the final response, then the promise resolves with it (a local
   * 503 when it could not be sent). A party that sends 1xx and never a final response stops
   * timer B: it is CANCELled after 64·T1.
   */
  reinvite(sdp: Buffer, onFinal: OnFinal): Promise<SipResponse> {
    const dialog = this.dialog;
    if (!dialog) return Promise.reject(new SipServerError('NO_DIALOG', 'no dialog to re-INVITE in'));
    return new Promise((resolve) => {
      const req = dialog.createRequest('INVITE', { body: sdp, contentType: 'application/sdp' });
      const guard = this.ctx.clock.setTimer(64 * this.ctx.timers.t1, () => {
        if (tx?.active) sendCancel(this.ctx, tx, [{ name: 'Reason', value: 'SIP;cause=408;text="no final response"' }]);
      });
      const tx = this.sendInvite(req, (res, info) => {
        guard.cancel();
        onFinal(res, info);
        resolve(res);
      });
      if (!tx) {
        guard.cancel();
        this.reinvitePending = false;
        resolve(createResponse(req, 503, 'Not Sent'));
      }
    });
  }

  /** The ACK for the 2xx to the INVITE with CSeq `cseq` the server sent on `dialog` (not a transaction: TransactionLayer.sendAck). */
  ack(cseq: number, dialog = this.dialog): void {
    if (dialog) this.sendAck(dialog.createRequest('ACK', { cseq }), dialog);
  }

  /** Sends an ACK built on the leg's dialog. */
  sendAck(ack: SipRequest, dialog = this.dialog, what = 'ACK not sent'): void {
    if (!dialog) return;
    this.ctx.transactions.sendAck(ack, dialog.destination).catch((err: unknown) => this.ctx.log.warn({ err }, what));
  }

  /** Answers an INVITE from the party with `ok`, retransmitted until its ACK (§13.3.1.4); `onNoAck` after 64·T1 without one. */
  sendOk(tx: ServerTransaction, ok: SipResponse, onNoAck: () => void): void {
    const retransmitter = new OkRetransmitter(this.ctx.clock, this.ctx.timers.t1, this.ctx.timers.t2);
    this.ok?.stop();
    this.ok = retransmitter;
    retransmitter.start(tx, ok, isReliable(tx.source.transport), onNoAck);
  }

  /** The party's ACK for the server's 2xx arrived (or the leg is done with): no more retransmissions. */
  stopOk(): void {
    this.ok?.stop();
  }

  /** BYE in the leg's dialog (the other side's BYE is answered by the relay); none without a dialog. */
  bye(headers: SipHeader[] = []): void {
    const dialog = this.dialog;
    if (!dialog) return;
    this.ok?.stop();
    this.send(dialog.createRequest('BYE', { headers }), () => undefined);
  }

  /** The dialog is over for this leg (BYE sent after a transfer): it is dropped; returns it. */
  forgetDialog(): Dialog | undefined {
    const dialog = this.dialog;
    if (!dialog) return undefined;
    this.dialog = undefined;
    this.ok?.stop();
    return dialog;
  }

  /** Hands the dialog (and its 2xx retransmitter, if any) to `to`, another call's leg; this leg has none after. */
  moveDialogTo(to: Leg): void {
    to.dialog = this.dialog;
    if (this.ok) to.ok = this.ok;
    this.dialog = undefined;
    this.ok = undefined;
  }
}

/**
 * How the server is in the caller's dialog: 'caller', the UAS of the caller's INVITE (a call
 * that came in); 'originator', the UAC that rang `from` (MakeCall, RFC 3725); 'transferee', a
 * dialog taken over from another call (a transfer the server carries out).
 */
export type CallerRole = 'caller' | 'originator' | 'transferee';

/** The caller's leg (leg a). */
export class CallerLeg extends Leg {
  /** 'caller': the caller's INVITE and its server transaction. */
  readonly tx?: ServerTransaction;
  readonly invite?: SipRequest;
  /** 'originator': the server's INVITE to `from`. */
  outTx?: ClientTransaction;
  /** The server's tag in the caller's dialog. */
  readonly tag: string;
  /** 'originator': the 2xx from `from` has been ACKed ('transferee': it was, in its old call). */
  acked = false;
  /**
   * 'originator': `from` had to be ACKed before `to` answered, with a held answer (`to`'s
   * answer reaches it later in a re-INVITE); `ackTimer` is the deadline for that ACK.
   */
  ackedHeld = false;
  ackTimer?: TimerHandle;
  /** 'caller': the number the caller dialled (the user of the server's Contact towards it). */
  private readonly calledAs: string;
  /** The server's id of the call, for logs. */
  private readonly call: string;

  private constructor(
    ctx: LegContext,
    readonly role: CallerRole,
    /** The caller's DN (the call's `from`): its type decides the re-open rule. */
    private readonly dn: string | null,
    init: { tag: string; tx?: ServerTransaction; invite?: SipRequest; acked?: boolean; calledAs?: string; call?: string },
  ) {
    super(ctx);
    this.tag = init.tag;
    if (init.tx) this.tx = init.tx;
    if (init.invite) this.invite = init.invite;
    this.acked = init.acked ?? false;
    this.calledAs = init.calledAs ?? '';
    this.call = init.call ?? '';
  }

  /** A caller's INVITE (no To tag) to `calledAs`, call `call`. */
  static inbound(ctx: LegContext, tx: ServerTransaction, invite: SipRequest, opts: { dn: string | null; tag: string; calledAs: string; call: string; allowsRefer: boolean }): CallerLeg {
    const leg = new CallerLeg(ctx, 'caller', opts.dn, { tag: opts.tag, tx, invite, calledAs: opts.calledAs, call: opts.call });
    leg.allowsRefer = opts.allowsRefer;
    return leg;
  }

  /** MakeCall's `from`, which the server rings first. */
  static originator(ctx: LegContext, dn: string, tag: string): CallerLeg {
    return new CallerLeg(ctx, 'originator', dn, { tag });
  }

  /** The transferee of a transfer: `from`'s dialog moves to the new leg (acked: its INVITE was, in the old call). */
  static transferee(ctx: LegContext, dn: string | null, from: Leg): CallerLeg {
    const leg = new CallerLeg(ctx, 'transferee', dn, { tag: from.dialog?.localTag ?? '', acked: true });
    if (from.allowsRefer) leg.allowsRefer = true;
    from.moveDialogTo(leg);
    return leg;
  }

  override get reopen(): boolean {
    const type = this.dn === null ? undefined : this.ctx.typeOf(this.dn);
    return type !== 'voip-service';
  }

  /** 'caller': answers the caller's INVITE unless a final response went already; 18x and 2xx carry `from`'s body. */
  answer(status: number, reason?: string, headers: SipHeader[] = [], from?: SipResponse): void {
    const tx = this.tx;
    if (!tx || (tx.lastResponse && tx.lastResponse.status >= 200)) return;
    try {
      tx.respond(this.response(status, reason, headers, from));
    } catch (err) {
      this.ctx.log.debug({ err, call: this.call, status }, 'caller transaction no longer takes this response');
    }
  }

  /**
   * 'caller': the callee answered (`res`). The caller's dialog is made (§12.1.1) and it gets
   * 200 with the callee's session, retransmitted until its ACK; `onNoAck` if none comes.
   */
  accept(res: SipResponse, onNoAck: () => void): void {
    const { tx, invite } = this;
    if (!tx || !invite) return;
    this.dialog = Dialog.asUas(invite, this.tag, tx.source, `<${this.ctx.contactFor(this.calledAs, tx.source.transport)}>`);
    this.sendOk(tx, this.response(200, 'OK', [], res), onNoAck);
  }

  /** 'originator': ACKs `from`'s 2xx once, with `answer` as the session answer (none: nobody gave one); `held`, a held answer. */
  ackAnswer(answer: { body?: Buffer; contentType?: string } = {}, held = false): void {
    const dialog = this.dialog;
    if (!dialog || this.acked) return;
    this.ackTimer?.cancel();
    this.acked = true;
    if (held) this.ackedHeld = true;
    this.sendAck(dialog.createRequest('ACK', answer), dialog);
  }

  /**
   * The call failed towards the callee and this party has nobody to talk to (MakeCall, a
   * transfer): ACKed if still waiting for that (without the answer nobody gave) and sent BYE;
   * or CANCELled while its phone rings.
   */
  hangUp(headers: SipHeader[]): void {
    if (this.dialog) {
      this.ackAnswer();
      this.bye(headers);
    } else if (this.outTx?.active) {
      sendCancel(this.ctx, this.outTx, headers);
    }
  }

  /** The server's response to the caller's INVITE; 18x and 2xx carry `from`'s body and the server's Contact. */
  private response(status: number, reason: string | undefined, headers: SipHeader[], from?: SipResponse): SipResponse {
    const extra: SipHeader[] = [...headers];
    const transport = this.tx?.source.transport ?? 'UDP';
    if (status > 100 && status < 300) extra.push({ name: 'Contact', value: `<${this.ctx.contactFor(this.calledAs, transport)}>` });
    // §12.1.1: a response that makes the dialog carries the request's Record-Route, so that
    // the caller's ACK and BYE go through the proxies that asked to stay (an edge proxy).
    if (status > 100 && status < 300 && this.invite) for (const value of getHeaderValues(this.invite, 'record-route')) extra.push({ name: 'Record-Route', value });
    const type = from && getHeader(from, 'content-type');
    if (from && from.body.length > 0 && type !== undefined) extra.push({ name: 'Content-Type', value: type });
    if (!this.invite) throw new SipServerError('CALL_NOT_INBOUND', 'only an inbound call has a caller INVITE to answer');
    return createResponse(this.invite, status, reason, { toTag: this.tag, headers: extra, ...(from && from.body.length > 0 ? { body: from.body } : {}) });
  }
}

/** The callee's leg (leg b): the server is its UAC; `targets` are tried in order (trunk failover). */
export class CalleeLeg extends Leg {
  targets: RouteTarget[] = [];
  index = 0;
  /** The INVITE to the current target. */
  tx?: ClientTransaction;
  /** The server CANCELled (or means to CANCEL) the INVITE: a 2xx to it is ACKed and BYEd. */
  cancelled = false;
  /**
   * A CANCEL the server owes the callee but may not send yet: no provisional response has
   * arrived (§9.1); the first one releases it. Holds the CANCEL's extra headers (Reason).
   */
  cancelOnProvisional?: SipHeader[];
  /** The ACK sent for the callee's 2xx, sent again if that 2xx is retransmitted. */
  answerAck?: SipRequest;
  /** The users of the INVITEs sent on this leg, let go of the call when it is released (CallSetup). */
  readonly inviteUsers: Array<{ letGo(): void }> = [];

  constructor(ctx: LegContext) {
    super(ctx);
  }

  /** The target the call reached or is trying now. */
  get target(): RouteTarget | undefined {
    return this.targets[this.index];
  }

  override get reopen(): boolean {
    return this.targets[this.index]?.type !== 'voip-service';
  }

  /**
   * CANCELs the INVITE to the callee (§9.1), or holds the CANCEL back until the first
   * provisional response when none has come yet (a final one, or timer B, then ends the INVITE
   * without it; a 2xx is ACKed and BYEd, since the leg is `cancelled`).
   */
  cancel(headers: SipHeader[] = []): void {
    const tx = this.tx;
    this.cancelled = true;
    if (!tx?.active) return;
    if (tx.state === 'Calling') {
      this.cancelOnProvisional = headers;
      return;
    }
    sendCancel(this.ctx, tx, headers);
  }

  /** A provisional response from the callee: a CANCEL held back for it goes now. */
  provisional(): void {
    const heldBack = this.cancelOnProvisional;
    if (heldBack && this.tx) {
      this.cancelOnProvisional = undefined;
      sendCancel(this.ctx, this.tx, heldBack);
    }
  }

  /** ACKs the callee's 2xx to the call's INVITE (with `body` as the answer, for a late offer), once; the ACK is kept for retransmitted 2xx. */
  ackAnswer(body?: Buffer): void {
    const dialog = this.dialog;
    if (!dialog || this.answerAck) return;
    const ack = dialog.createRequest('ACK', { cseq: 1, ...(body && body.length > 0 ? { body, contentType: 'application/sdp' } : {}) });
    this.answerAck = ack;
    this.sendAck(ack, dialog);
  }

  /** The callee retransmitted its 2xx (our ACK was lost, or is not sent yet): the same ACK again, if it went. */
  resendAck(): void {
    const ack = this.answerAck;
    if (ack) this.sendAck(ack, this.dialog, 'ACK not re-sent');
  }
}
