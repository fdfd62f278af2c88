import { SipParseError } from '../util/errors.js';
import { getHeaderValues, type SipHeader, type SipRequest } from '../sip/message.js';
import { parseNameAddr } from '../sip/name-addr.js';
import { createResponse, REASON_PHRASES } from '../sip/response.js';
import type { ServerTransaction } from '../transaction/types.js';
import type { Clock, TimerHandle } from '../util/clock.js';
import type { Logger } from '../util/logger.js';
import type { Call, LegName } from './call.js';
import type { CallEvent } from './call-events.js';
import type { CallManager } from './call-manager.js';
import type { Router } from './routing.js';
import { continueSession, mirrorDirection } from './sdp.js';
import { userOf } from './sip-parties.js';
import { startTransferCall } from './transfer-call.js';

export interface PhoneTransferDeps {
  calls: CallManager;
  router: Router;
  clock: Clock;
  log: Logger;
  /** After the final NOTIFY, how long the transferor has to hang up before the server sends BYE (default 2000 ms). */
  transferorByeMs?: number;
}

/** A blind transfer a phone asked for, in progress: `call` is the old call, `newCall` the transferee's new one. */
interface Pending {
  call: Call;
  newCall: Call;
  transferor: LegName;
  transferee: LegName;
  to: string;
  /** The transferor's dialog is over (it hung up, or was sent BYE): no NOTIFY goes to it any more. */
  transferorGone: boolean;
  byeTimer?: TimerHandle;
}

const other = (leg: LegName): LegName => (leg === 'a' ? 'b' : 'a');
const roleOf = (leg: LegName): 'caller' | 'callee' => (leg === 'a' ? 'caller' : 'callee');

/**
 * Blind transfer started by a phone (RFC 3515 REFER in a call's dialog, flow as in RFC 5589 §6),
 * carried out by the server itself whatever the other party supports: the REFER gets 202 and
 * the transferor NOTIFYs with the progress as message/sipfrag (100 Trying, then the new call's
 * final status); the transferee's dialog moves to a new call towards the Refer-To number
 * (RFC 3725 flow I, as a SingleStepTransfer by re-INVITE). When the new call is answered the
 * transferor is told 200 and expected to hang up (it is sent BYE if it does not); when it
 * fails, the transferor is told the failure and the transferee is back in the old call, as it
 * was (RFC 5589 §6: the transferor may retrieve it). A transferor that hangs up at once is
 * fine: the transfer goes on without it.
 */
export class PhoneTransfer {
  private readonly pending = new Map<Call, Pending>();
  private readonly byNewCall = new Map<string, Pending>();

  constructor(private readonly deps: PhoneTransferDeps) {
    deps.calls.events.on('EventEstablished', (e) => this.newCallAnswered(e));
    deps.calls.events.on('EventReleased', (e) => {
      this.newCallEnded(e);
      this.oldCallEnded(e.callId);
    });
    deps.calls.takeBackTransferee = (newCall) => this.takeBack(newCall);
  }

  /** Whether a request in `call`'s dialogs belongs to a transfer in progress (onDialogRequest takes it). */
  transferring(call: Call): boolean {
    return this.pending.has(call);
  }

  /** A REFER from one party of an established call. */
  onRefer(call: Call, leg: LegName, tx: ServerTransaction, req: SipRequest): void {
    const dialog = call[leg].dialog;
    const reply = (status: number, reason?: string): void => tx.respond(createResponse(req, status, reason, { toTag: dialog?.localTag ?? '' }));
    if (!dialog || !dialog.acceptRemote(req)) {
      reply(dialog ? 500 : 481, dialog ? 'CSeq Out of Order' : undefined);
      return;
    }
    const refused = this.busy(call);
    if (refused) {
      reply(refused.status, refused.reason);
      return;
    }
    const target = referTarget(req);
    if (typeof target !== 'string') {
      reply(target.status, target.reason);
      return;
    }
    const route = this.deps.router.route(target);
    if (route.kind === 'reject') {
      reply(route.status, route.reason);
      return;
    }
    reply(202, 'Accepted');
    const transferee = other(leg);
    this.deps.log.info({ call: call.id, transferor: leg, to: target }, 'transfer asked by a phone (REFER)');
    this.notify(call, leg, 'SIP/2.0 100 Trying', false);
    // Known before the new call's INVITE goes out: it may fail at once.
    startTransferCall(this.deps.calls, this.deps.clock, call, transferee, target, route.targets, (newCall) => {
      const p: Pending = { call, newCall, transferor: leg, transferee, to: target, transferorGone: false };
      this.pending.set(call, p);
      this.byNewCall.set(newCall.id, p);
    });
  }

  /** Cancels what is pending (server shutdown). */
  stop(): void {
    for (const p of this.pending.values()) p.byeTimer?.cancel();
    this.pending.clear();
    this.byNewCall.clear();
  }

  /**
   * The old call was released by somebody else (ReleaseCall on the API, shutdown: its
   * transferor has been sent BYE): nothing more goes to the transferor.
   */
  private oldCallEnded(callId: string): void {
    for (const p of this.pending.values()) {
      if (p.call.id !== callId) continue;
      p.transferorGone = true;
      p.byeTimer?.cancel();
      this.pending.delete(p.call);
    }
  }

  /**
   * A request in the old call while its transfer is in progress: only the transferor's dialog
   * is left in it. Its BYE ends the old call; a re-INVITE (a phone holding the call while it
   * transfers it) is answered here with the session it had, its direction mirrored, since the
   * transferee's media is no longer the transferor's business; anything else gets 200.
   */
  onDialogRequest(call: Call, leg: LegName, tx: ServerTransaction, req: SipRequest): void {
    const p = this.pending.get(call);
    const dialog = call[leg].dialog;
    if (!p || !dialog || leg !== p.transferor) {
      tx.respond(createResponse(req, 481, undefined, { toTag: dialog?.localTag ?? '' }));
      return;
    }
    if (!dialog.acceptRemote(req)) {
      tx.respond(createResponse(req, 500, 'CSeq Out of Order', { toTag: dialog.localTag }));
      return;
    }
    if (req.method === 'BYE') {
      tx.respond(createResponse(req, 200, 'OK', { toTag: dialog.localTag }));
      p.transferorGone = true;
      this.deps.calls.forgetDialog(call, leg);
      this.endOldCall(p, roleOf(leg));
      return;
    }
    if (req.method === 'INVITE' && req.body.length > 0 && call.sdpTo[leg]) {
      const answer = continueSession(call.sdpTo[leg], mirrorDirection(call.sdpTo[leg], req.body));
      call.sdpTo[leg] = answer;
      const ok = createResponse(req, 200, 'OK', { toTag: dialog.localTag, headers: [{ name: 'Contact', value: dialog.localContact }, { name: 'Content-Type', value: 'application/sdp' }], body: answer });
      call[leg].sendOk(tx, ok, () => this.deps.log.warn({ call: call.id }, 'no ACK for a re-INVITE 2xx'));
      return;
    }
    // A second transfer while this one runs waits for it (RFC 3261 §14.1's 491 for REFER too).
    const status = req.method === 'INVITE' ? 488 : req.method === 'REFER' ? 491 : 200;
    tx.respond(createResponse(req, status, undefined, { toTag: dialog.localTag }));
  }

  /** Why a REFER cannot be taken now, if it cannot. */
  private busy(call: Call): { status: number; reason: string } | undefined {
    if (call.state !== 'established') return { status: 403, reason: 'Call Not Established' };
    if (call.transfer || this.pending.has(call)) return { status: 491, reason: 'Transfer in Progress' };
    if (call.reinvitePending) return { status: 491, reason: 'Request Pending' };
    return undefined;
  }

  private newCallAnswered(e: CallEvent): void {
    const p = this.byNewCall.get(e.callId);
    if (!p) return;
    this.byNewCall.delete(e.callId);
    if (p.transferorGone || p.call.state === 'released') return;
    this.notify(p.call, p.transferor, 'SIP/2.0 200 OK', true);
    // RFC 5589: the transferor hangs up once told; a phone that does not is sent BYE.
    p.byeTimer = this.deps.clock.setTimer(this.deps.transferorByeMs ?? 2000, () => {
      if (p.transferorGone) return;
      p.transferorGone = true;
      this.deps.calls.bye(p.call, p.transferor, [{ name: 'Reason', value: 'SIP;cause=200;text="call transferred"' }]);
      this.deps.calls.forgetDialog(p.call, p.transferor);
      this.endOldCall(p, 'server');
    });
  }

  /**
   * The new call failed before it was answered (CallManager asks before hanging up the
   * transferee): while the transferor is still there, the transferee's dialog goes back to the
   * old call, which goes on, and the new call leaves it alone.
   */
  private takeBack(newCall: Call): boolean {
    const p = this.byNewCall.get(newCall.id);
    if (!p || p.transferorGone || p.call.state === 'released' || !newCall.a.dialog) return false;
    newCall.a.moveDialogTo(p.call[p.transferee]);
    this.deps.calls.track(p.call, p.call[p.transferee].dialog);
    return true;
  }

  private newCallEnded(e: CallEvent & { status?: number }): void {
    const p = this.byNewCall.get(e.callId);
    if (!p) return;
    this.byNewCall.delete(e.callId);
    const status = e.status ?? 487;
    if (p.transferorGone || p.call.state === 'released') return;
    this.notify(p.call, p.transferor, `SIP/2.0 ${status} ${REASON_PHRASES[status] ?? 'Transfer Failed'}`, true);
    this.pending.delete(p.call);
    if (p.call[p.transferee].dialog) {
      this.deps.log.info({ call: p.call.id, to: p.to, status }, 'transfer failed: the transferee is back in the call');
      return;
    }
    // The transferee is gone too (it hung up while the new call rang): the old call ends.
    p.transferorGone = true;
    this.deps.calls.bye(p.call, p.transferor, [{ name: 'Reason', value: `SIP;cause=${status};text="transfer failed"` }]);
    this.deps.calls.forgetDialog(p.call, p.transferor);
    this.deps.calls.release(p.call, 'normal', status, { by: 'server' });
  }

  /** The old call is over: released as transferred (cause normal) to the new call. */
  private endOldCall(p: Pending, by: 'caller' | 'callee' | 'server'): void {
    p.byeTimer?.cancel();
    this.pending.delete(p.call);
    if (this.byNewCall.get(p.newCall.id) === p && p.newCall.state === 'released') this.byNewCall.delete(p.newCall.id);
    this.deps.calls.release(p.call, 'normal', undefined, { by, transferredTo: p.to, newCallId: p.newCall.id });
  }

  /** NOTIFY of the implicit refer subscription (RFC 3515 §2.4.4) with a sipfrag of the new call's status. */
  private notify(call: Call, leg: LegName, statusLine: string, final: boolean): void {
    const dialog = call[leg].dialog;
    if (!dialog) return;
    const headers: SipHeader[] = [
      { name: 'Event', value: 'refer' },
      { name: 'Subscription-State', value: final ? 'terminated;reason=noresource' : 'active;expires=60' },
      { name: 'Contact', value: dialog.localContact },
    ];
    const req = dialog.createRequest('NOTIFY', { headers, body: Buffer.from(`${statusLine}\r\n`), contentType: 'message/sipfrag;version=2.0' });
    this.deps.calls.send(req, dialog.destination, (res) => {
      if (res.status >= 300) this.deps.log.info({ call: call.id, status: res.status }, 'the transferor did not take a NOTIFY');
    }, this.deps.calls.reopenOn(call, leg));
  }
}

/** The number a REFER's Refer-To names (a sip:/sips:/tel: user part), or why it cannot be used. */
function referTarget(req: SipRequest): string | { status: number; reason: string } {
  const values = getHeaderValues(req, 'refer-to');
  if (values.length !== 1) return { status: 400, reason: values.length === 0 ? 'Missing Refer-To' : 'More Than One Refer-To' };
  let uri: string;
  try {
    uri = parseNameAddr(values[0] ?? '', 'Refer-To').uri;
  } catch (err) {
    if (err instanceof SipParseError) return { status: 400, reason: 'Bad Refer-To' };
    throw err;
  }
  // Attended transfer (Refer-To with an embedded Replaces) is not carried out: say so.
  if (/\?.*replaces=/i.test(uri)) return { status: 501, reason: 'Attended Transfer Not Supported' };
  const number = userOf(uri.split('?')[0] ?? '');
  return number === undefined || number === '' ? { status: 400, reason: 'No Number in Refer-To' } : number;
}
