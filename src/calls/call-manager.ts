import { Dialog } from '../dialog/dialog.js';
import type { Directory } from '../directory/directory.js';
import type { CallRecord } from '../registrar/binding.js';
import type { CallRecordQuery, CallRecords } from '../registrar/store.js';
import { getHeader, type SipHeader, type SipRequest, type SipResponse } from '../sip/message.js';
import { createResponse } from '../sip/response.js';
import type { TransactionLayer } from '../transaction/transaction-layer.js';
import type { ClientTransaction, FinalInfo, ServerTransaction } from '../transaction/types.js';
import type { Source, TransportName } from '../transport/types.js';
import type { Admission } from './caller-admission.js';
import type { Clock } from '../util/clock.js';
import { newTag, randomToken } from '../util/ids.js';
import type { Logger } from '../util/logger.js';
import { SipServerError } from '../util/errors.js';
import { TypedEvents } from '../util/typed-events.js';
import { Call, calleeDn, recordOf, type LegName, type ReleasedBy } from './call.js';
import type { CallEvent, CallEvents } from './call-events.js';
import { CallSetup } from './call-setup.js';
import { CalleeLeg, CallerLeg, sendRequest, type LegContext } from './leg.js';
import { failureText, releaseCause, type ReleaseCause } from './release-cause.js';
import type { Router } from './routing.js';
import { continueSession } from './sdp.js';
import { allowsRefer, offerOf, userOf } from './sip-parties.js';

export interface CallManagerDeps {
  transactions: TransactionLayer;
  router: Router;
  directory: Directory;
  records: CallRecords;
  clock: Clock;
  log: Logger;
  timers: { t1: number; t2: number };
  /** The server's Contact URI for a leg on `transport`, e.g. sip:1001@127.0.0.1:5060;transport=tcp. */
  contactFor(user: string, transport: TransportName): string;
  /** A DN's address of record on this server (sip:DN@sip-address), for To of a request to its phone. */
  aorFor(user: string): string;
  /** Whether a new INVITE may place a call, and who its caller is (authenticate or be trusted). */
  admit(req: SipRequest, source: Source): Admission;
}

/**
 * The B2BUA (SPEC §6): every call is two legs joined by the server. This class routes a
 * caller's INVITE, hands the callee side to CallSetup (INVITE, failover, responses mapped
 * back), joins the legs when the callee answers, keeps calls by leg, and releases them with a
 * cause, a call record and an event. What one side does (ACK, 2xx retransmission, CANCEL, BYE)
 * is its Leg's; in-dialog requests are relayed by InDialogRelay.
 */
export class CallManager {
  readonly events: TypedEvents<CallEvents>;
  /** What the calls' legs send through (for the modules that make calls: MakeCall, transfers). */
  readonly legs: LegContext;
  private readonly setup: CallSetup;
  private readonly calls = new Map<string, Call>();
  private readonly byInvite = new Map<ServerTransaction, Call>();
  /** Calls by the Call-ID of either leg's dialog, so in-dialog requests find theirs at once. */
  private readonly byDialogCallId = new Map<string, Call>();
  private accepting = true;
  /**
   * Asked before the transferee of a failed transfer call (origin 'transfer') is hung up:
   * true when its dialog went back to the call it came from (a phone's transfer that failed).
   */
  takeBackTransferee: ((call: Call) => boolean) | undefined;

  constructor(private readonly deps: CallManagerDeps) {
    this.events = new TypedEvents<CallEvents>((err, name) => deps.log.error({ err, event: name }, 'call listener failed'));
    this.legs = {
      transactions: deps.transactions,
      clock: deps.clock,
      log: deps.log,
      timers: deps.timers,
      contactFor: (user, transport) => deps.contactFor(user, transport),
      typeOf: (dn) => deps.directory.get(dn)?.options.type,
    };
    this.setup = new CallSetup({ legs: this.legs, directory: deps.directory, aorFor: (user) => deps.aorFor(user) }, this);
  }

  all(): Call[] {
    return [...this.calls.values()];
  }

  get(id: string): Call | undefined {
    return this.calls.get(id);
  }

  /** The record of a call that has ended (kept in the store). */
  record(id: string): CallRecord | undefined | Promise<CallRecord | undefined> {
    return this.deps.records.getCallRecord(id);
  }

  /** Records of ended calls, newest first. */
  records(query: CallRecordQuery = {}): CallRecord[] | Promise<CallRecord[]> {
    return this.deps.records.listCallRecords(query);
  }

  /** The call and leg an in-dialog request belongs to. */
  findByDialog(req: SipRequest): { call: Call; leg: 'a' | 'b' } | undefined {
    const call = this.byDialogCallId.get(getHeader(req, 'call-id') ?? '');
    if (call?.a.dialog?.matches(req)) return { call, leg: 'a' };
    if (call?.b.dialog?.matches(req)) return { call, leg: 'b' };
    return undefined;
  }

  /**
   * Shutdown (SPEC §2): new INVITEs get 503 from now on, and every call in progress is
   * released with a Reason (BYE, or CANCEL and 487), none silently.
   */
  shutdown(): void {
    this.accepting = false;
    for (const call of this.all()) this.releaseCall(call, 'administrative', 'SIP;cause=503;text="server shutting down"');
  }

  /** A new INVITE (no To tag) from a caller: admitted, routed, and the callee called. */
  onInvite(tx: ServerTransaction, req: SipRequest): void {
    if (!this.accepting) {
      tx.respond(createResponse(req, 503, 'Shutting Down', { toTag: newTag(), headers: [{ name: 'Retry-After', value: '30' }] }));
      return;
    }
    const number = userOf(req.uri);
    // Authenticate or be trusted; the caller's DN is the authenticated one or what the server
    // knows of the source, never only its From (SPEC §9).
    const admission = this.deps.admit(req, tx.source);
    if (!admission.ok) {
      this.deps.log.info({ source: `${tx.source.address}:${tx.source.port}`, status: admission.status, why: admission.detail }, 'INVITE refused');
      tx.respond(createResponse(req, admission.status, admission.reason, { toTag: newTag(), headers: admission.headers }));
      return;
    }
    const caller = admission.caller;
    const id = randomToken(8);
    const to = number ?? '';
    const call = new Call({
      id,
      from: caller.dn,
      caller: caller.presented,
      to,
      state: 'dialing',
      startedAt: this.deps.clock.now(),
      a: CallerLeg.inbound(this.legs, tx, req, { dn: caller.dn, tag: newTag(), calledAs: to, call: id, allowsRefer: allowsRefer(req) }),
      b: new CalleeLeg(this.legs),
      offer: offerOf(req),
    });
    this.calls.set(call.id, call);
    this.byInvite.set(tx, call);
    this.emit('EventDialing', call, call.from, call.to);
    const route = number === undefined ? { kind: 'reject' as const, status: 404, reason: 'No User in Request-URI' } : this.deps.router.route(number);
    if (route.kind === 'reject') {
      call.a.answer(route.status, route.reason);
      this.release(call, releaseCause(route.status), route.status);
      return;
    }
    this.setup.connect(call, route.targets);
  }

  /** CANCEL of a caller's INVITE (§9.2): 200 to the CANCEL, 487 to the INVITE, CANCEL to the callee. */
  onCancel(cancelTx: ServerTransaction, inviteTx: ServerTransaction | undefined): void {
    const call = inviteTx && this.byInvite.get(inviteTx);
    cancelTx.respond(createResponse(cancelTx.request, call ? 200 : 481, undefined, { toTag: call?.a.tag ?? newTag() }));
    if (!call || call.state === 'established' || call.state === 'released') return;
    call.a.answer(487);
    call.b.cancel();
    this.release(call, 'cancelled', undefined, { by: 'caller' });
  }

  /** An ACK that matched no transaction: the ACK for a 2xx the server sent. */
  onAck(ack: SipRequest): void {
    const found = this.findByDialog(ack);
    if (found) found.call[found.leg].stopOk();
  }

  /** Ends a call from the server's side: CANCEL or 487 while setting up, BYE on both legs when up. */
  releaseCall(call: Call, cause: ReleaseCause, reason?: string): void {
    if (call.state === 'released') return;
    const header = reason ? [{ name: 'Reason', value: reason }] : [];
    if (call.state === 'established') {
      call.a.bye(header);
      call.b.bye(header);
    } else {
      call.a.answer(487, undefined, header);
      call.b.cancel(header);
      if (call.origin !== 'inbound') this.hangUpOriginator(call, reason ?? 'SIP;cause=487;text="released"');
    }
    this.release(call, cause);
  }

  /** The caller leg hung up before the callee answered (MakeCall: `from`'s BYE): CANCEL the callee. */
  abandon(call: Call): void {
    if (call.state === 'released' || call.state === 'established') return;
    call.a.ackAnswer();
    call.b.cancel([{ name: 'Reason', value: 'SIP;cause=487;text="caller hung up"' }]);
    this.release(call, 'cancelled', undefined, { by: 'caller' });
  }

  /** Sends BYE on one leg of an established call (the other side's BYE is answered by the relay). */
  bye(call: Call, leg: 'a' | 'b', headers: SipHeader[] = []): void {
    call[leg].bye(headers);
  }

  /**
   * Ends the call's bookkeeping: state, the call record, EventReleased. `by` is who ended it
   * (the party that hung up or refused, else the server); the event's `dn` is that party.
   */
  release(call: Call, cause: ReleaseCause, status?: number, opts: { by?: ReleasedBy; transferredTo?: string; newCallId?: string } = {}): void {
    if (call.state === 'released') return;
    const by = opts.by ?? 'server';
    call.a.stopOk();
    call.b.stopOk();
    call.a.ackTimer?.cancel();
    call.transfer?.timer?.cancel();
    call.transition('released');
    for (const user of call.b.inviteUsers) user.letGo();
    call.cause = cause;
    call.endedAt = this.deps.clock.now();
    this.calls.delete(call.id);
    if (call.a.tx) this.byInvite.delete(call.a.tx);
    if (call.a.dialog) this.byDialogCallId.delete(call.a.dialog.callId);
    if (call.b.dialog) this.byDialogCallId.delete(call.b.dialog.callId);
    const transfer = { ...(opts.transferredTo !== undefined ? { transferredTo: opts.transferredTo } : {}), ...(opts.newCallId !== undefined ? { newCallId: opts.newCallId } : {}) };
    try {
      this.deps.records.addCallRecord(recordOf(call, status, by, transfer));
    } catch (err) {
      this.deps.log.error({ err, call: call.id }, 'could not write the call record');
    }
    const [dn, otherDn] = by === 'callee' ? [calleeDn(call), call.from] : [call.from, calleeDn(call)];
    this.events.emit('EventReleased', { ...this.event(call, dn, otherDn), cause, releasedBy: by, ...(status !== undefined ? { status } : {}), ...transfer });
  }

  emit(name: 'EventDialing' | 'EventRinging' | 'EventEstablished' | 'EventHeld' | 'EventRetrieved', call: Call, dn: string | null, otherDn: string | null): void {
    this.events.emit(name, this.event(call, dn, otherDn));
  }

  /** Sends a request in its own client transaction; `onFinal` gets the final response. */
  send(req: SipRequest, dest: Dialog['destination'], onFinal: (res: SipResponse, info: FinalInfo) => void, reopen = true): ClientTransaction | undefined {
    return sendRequest(this.legs, req, dest, onFinal, reopen);
  }

  /** Whether a dead connection may be re-opened for a request on `leg` (not to a voip-service DN, SPEC §5.4). */
  reopenOn(call: Call, leg: LegName): boolean {
    return call[leg].reopen;
  }

  /**
   * A request the server sent in one leg's dialog (a relayed or its own re-INVITE, UPDATE,
   * INFO, REFER…) failed so that the leg is gone: no answer (timeout), its connection could not
   * be (re-)opened, or 481 (the far end has no such dialog). Then the DN goes out of service
   * (for a local failure), the other leg gets BYE with a Reason and the call is released
   * (SPEC §4, §5.3). Returns true when it did so.
   */
  legFailed(call: Call, leg: LegName, res: SipResponse, info: FinalInfo): boolean {
    if (call.state === 'released') return false;
    const local = info.local !== false;
    if (!local && res.status !== 481 && res.status !== 408) return false;
    const dn = leg === 'a' ? call.from : calleeDn(call);
    if (local && dn !== null && this.deps.directory.get(dn)) {
      this.deps.directory.setState(dn, 'out-of-service', info.local === 'timeout' ? `${res.status} no response in the call` : `transport error in the call: ${info.local === 'transport-error' ? info.cause.message : ''}`);
    }
    const cause = releaseCause(res.status, info, 'dialog');
    this.deps.log.warn({ call: call.id, leg, dn, status: res.status, cause }, 'a leg of the call is gone: releasing the call');
    call[leg === 'a' ? 'b' : 'a'].bye([{ name: 'Reason', value: `SIP;cause=${res.status};text="${failureText(res.status, info)}"` }]);
    this.release(call, cause, res.status);
    return true;
  }

  /** The leg's dialog is over (BYE sent after a transfer): nothing more goes to it or comes from it. */
  forgetDialog(call: Call, leg: LegName): void {
    const dialog = call[leg].forgetDialog();
    if (!dialog) return;
    const other = call[leg === 'a' ? 'b' : 'a'].dialog;
    if (other?.callId !== dialog.callId && this.byDialogCallId.get(dialog.callId) === call) this.byDialogCallId.delete(dialog.callId);
  }

  /** Keeps a call made elsewhere (MakeCall) so the API and in-dialog requests find it. */
  track(call: Call, dialog?: Dialog): void {
    this.calls.set(call.id, call);
    if (dialog) this.byDialogCallId.set(dialog.callId, call);
  }

  /** Starts the callee leg of a tracked call along `targets`. */
  connect(call: Call, targets: Call['b']['targets']): void {
    this.setup.connect(call, targets);
  }

  /** The callee answered (CallSetup): the legs are joined, each the way the server is in the caller's dialog. */
  established(call: Call, res: SipResponse, tx: ClientTransaction): void {
    // The destination is pinned to the flow the INVITE went out on (client-transaction-base).
    call.b.dialog = Dialog.asUac(tx.request, res, tx.destination, `<${this.deps.contactFor(call.caller, tx.destination.transport)}>`);
    call.b.allowsRefer = allowsRefer(res);
    // A transfer by re-INVITE sends its ACK later, with the transferee's answer.
    if (call.a.role !== 'transferee') call.b.ackAnswer();
    this.byDialogCallId.set(call.b.dialog.callId, call);
    if (call.offer.body.length > 0) call.sdpTo.b = call.offer.body;
    this.joinCaller(call, res);
    if (call.a.dialog) this.byDialogCallId.set(call.a.dialog.callId, call);
    // Released while joining (a transfer whose new party made no offer): it never was established.
    if (call.state === 'released') return;
    call.transition('established');
    call.answeredAt = this.deps.clock.now();
    this.emit('EventEstablished', call, calleeDn(call), call.from);
  }

  /** Gives the caller the callee's answer `res`. */
  private joinCaller(call: Call, res: SipResponse): void {
    const a = call.a;
    if (a.role === 'caller') {
      // The caller gets 200 OK with the callee's session.
      a.accept(res, () => this.releaseCall(call, 'timeout', 'SIP;cause=408;text="no ACK"'));
      if (res.body.length > 0) call.sdpTo.a = res.body;
    } else if (!a.dialog) {
      return;
    } else if (a.role === 'originator' && a.ackedHeld) {
      // MakeCall whose `from` was ACKed with a held answer while `to` rang: the callee's
      // answer reaches `from` now, in a re-INVITE continuing that session.
      this.reinvite(call, 'a', continueSession(call.sdpTo.a, res.body)).then(
        (r) => {
          if (r.status >= 300) this.deps.log.warn({ call: call.id, status: r.status }, 'MakeCall: from refused the callee\'s session');
        },
        (err: unknown) => this.deps.log.error({ err, call: call.id }, 'MakeCall: re-INVITE to from failed'),
      );
    } else if (a.role === 'originator') {
      // MakeCall: `from` answered our offerless INVITE with an offer; its ACK carries the callee's answer.
      const type = getHeader(res, 'content-type');
      a.ackAnswer({ body: res.body, ...(type !== undefined ? { contentType: type } : {}) });
      if (res.body.length > 0) call.sdpTo.a = res.body;
    } else {
      // Transfer by re-INVITE (RFC 3725 flow I): the new callee answered our offerless INVITE
      // with an offer; the transferee gets it in a re-INVITE (as the next version of its
      // session) and its answer goes to the callee in the ACK.
      this.joinTransferee(call, res).catch((err: unknown) => {
        this.deps.log.error({ err, call: call.id }, 'transfer: joining the transferee failed');
        call.b.ackAnswer();
        this.releaseCall(call, 'rejected', 'SIP;cause=500;text="transfer failed"');
      });
    }
  }

  private async joinTransferee(call: Call, res: SipResponse): Promise<void> {
    if (res.body.length === 0) {
      call.b.ackAnswer();
      this.releaseCall(call, 'rejected', 'SIP;cause=488;text="the new party made no offer"');
      return;
    }
    const answer = await this.reinvite(call, 'a', continueSession(call.sdpTo.a, res.body));
    if (call.state === 'released') return;
    if (answer.status >= 300) {
      call.b.ackAnswer();
      this.releaseCall(call, 'rejected', `SIP;cause=${answer.status};text="the transferee refused the new session"`);
      return;
    }
    call.sdpTo.b = answer.body;
    call.b.ackAnswer(answer.body);
  }

  /**
   * A re-INVITE from the server itself (HoldCall, RetrieveCall, transfer) to one leg with
   * `sdp` as the offer; a 2xx is ACKed and `sdp` becomes what that party was last sent.
   * Resolves with the final response (a local 408/503 when there was none).
   */
  reinvite(call: Call, leg: LegName, sdp: Buffer): Promise<SipResponse> {
    if (!call[leg].dialog) return Promise.reject(new SipServerError('NO_DIALOG', `leg ${leg} of call ${call.id} has no dialog`));
    return call[leg].reinvite(sdp, (res, info) => {
      if (res.status >= 200 && res.status < 300) call.sdpTo[leg] = sdp;
      else this.legFailed(call, leg, res, info);
    });
  }

  /**
   * A failed call towards the callee (MakeCall, transfer) hangs up its caller leg too: `from`
   * (or the transferee) is ACKed and BYEd, or CANCELled while ringing — unless a failed phone
   * transfer takes its transferee back into the old call.
   */
  hangUpOriginator(call: Call, reason: string): void {
    if (call.origin === 'transfer' && this.takeBackTransferee?.(call)) return;
    call.a.hangUp([{ name: 'Reason', value: reason }]);
  }

  private event(call: Call, dn: string | null, otherDn: string | null): CallEvent {
    return { callId: call.id, dn, otherDn, from: call.from, caller: call.caller, to: call.to, time: this.deps.clock.now() };
  }
}
