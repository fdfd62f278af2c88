import { getHeaderValues, type SipHeader, type SipRequest, type SipResponse } from '../sip/message.js';
import { createResponse } from '../sip/response.js';
import type { ServerTransaction } from '../transaction/types.js';
import type { TransportName } from '../transport/types.js';
import type { Clock } from '../util/clock.js';
import { randomToken } from '../util/ids.js';
import type { Logger } from '../util/logger.js';
import { calleeDn, controllingLeg, dnOf, presentedOf, type Call, type LegName } from './call.js';
import { releaseCause } from './release-cause.js';
import { startTransferCall } from './transfer-call.js';
import type { CallManager } from './call-manager.js';
import type { Router } from './routing.js';
import { continueSession, withDirection } from './sdp.js';

export interface CallControlDeps {
  calls: CallManager;
  router: Router;
  clock: Clock;
  log: Logger;
  contactFor(user: string, transport: TransportName): string;
  /** How long a REFERred transferee may take to report the outcome before the server ends the old dialog. */
  transferOutcomeMs?: number;
}

export type ControlResult = { ok: true; status: number; json: Record<string, unknown> } | { ok: false; status: number; error: string };

/** REFER answers that mean "this endpoint does not do REFER": the transfer goes on by re-INVITE. */
const REFER_UNSUPPORTED = new Set([405, 420, 501]);

const TRANSFERRED: SipHeader = { name: 'Reason', value: 'SIP;cause=200;text="call transferred"' };

const other = (leg: LegName): LegName => (leg === 'a' ? 'b' : 'a');
const fail = (status: number, error: string): ControlResult => ({ ok: false, status, error });

/** An HTTP status for a party's failure answer to our request. */
function partyFailure(what: string, res: SipResponse): ControlResult {
  const status = res.status === 491 ? 409 : res.status === 408 ? 504 : 502;
  return fail(status, `${what}: ${res.status} ${res.reason}`);
}

/**
 * Third-party control of established calls (SPEC §7): HoldCall, RetrieveCall and
 * SingleStepTransfer. Each acts for one party of the call: the DN named in the request, or
 * by default the controlling party (the callee of a call that came in, `from` of a MakeCall).
 *
 * - Hold: the other party gets a re-INVITE with the session it had, marked `a=sendonly`
 *   (RFC 3264 §8.4) and its o= version raised; Retrieve: the same with `a=sendrecv`.
 * - Transfer: the other party (the transferee) is sent REFER when its Allow header lists
 *   REFER (RFC 3515; the transferor gets BYE once the REFER is accepted, and the old dialog
 *   ends when the transferee reports the outcome or hangs up). When it does not, or answers
 *   the REFER with 405/420/501, the server does it with a re-INVITE: the transferor gets BYE,
 *   the new party an INVITE with the transferee's session, and on its answer the transferee a
 *   re-INVITE carrying the new party's session — a new call on the transferee's dialog.
 */
export class CallControl {
  constructor(private readonly deps: CallControlDeps) {}

  async hold(call: Call, dn?: string): Promise<ControlResult> {
    const holder = this.legOf(call, dn);
    if (typeof holder !== 'string') return holder;
    if (call.heldBy) return this.busy(call) ?? fail(409, 'the call is already held');
    return this.changeHold(call, holder, true);
  }

  async retrieve(call: Call, dn?: string): Promise<ControlResult> {
    const asked = this.legOf(call, dn);
    if (typeof asked !== 'string') return asked;
    if (!call.heldBy) return this.busy(call) ?? fail(409, 'the call is not held');
    if (call.heldBy.by !== 'api') return fail(409, 'the call was put on hold by a phone; only that phone can retrieve it');
    return this.changeHold(call, call.heldBy.leg, false);
  }

  /**
   * Re-INVITEs the party `holder` holds (or held) with the session it had, marked inactive
   * (hold) or sendrecv (retrieve). inactive, not sendonly: the holding party's phone is not told
   * and goes on sending, and the held party must not hear it (there is no music on hold).
   */
  private async changeHold(call: Call, holder: LegName, hold: boolean): Promise<ControlResult> {
    const busy = this.busy(call);
    if (busy) return busy;
    const held = other(holder);
    const sdp = call.sdpTo[held];
    if (!sdp) return fail(409, `the call has no session description to ${hold ? 'put on hold' : 'retrieve'}`);
    const res = await this.deps.calls.reinvite(call, held, continueSession(sdp, withDirection(sdp, hold ? 'inactive' : 'sendrecv')));
    if (res.status >= 300) return partyFailure('the held party answered', res);
    if (call.state === 'released') return fail(409, 'the call was released meanwhile');
    call.heldBy = hold ? { leg: holder, by: 'api' } : undefined;
    this.deps.calls.emit(hold ? 'EventHeld' : 'EventRetrieved', call, dnOf(call, holder), dnOf(call, held));
    return { ok: true, status: 200, json: { id: call.id, held: hold, dn: dnOf(call, holder) } };
  }

  async transfer(call: Call, to: string, dn?: string): Promise<ControlResult> {
    const transferor = this.legOf(call, dn);
    if (typeof transferor !== 'string') return transferor;
    const busy = this.busy(call);
    if (busy) return busy;
    const route = this.deps.router.route(to);
    if (route.kind === 'reject') return fail(route.status === 404 ? 404 : 409, `to: ${route.reason}`);
    const transferee = other(transferor);
    if (call[transferee].allowsRefer) {
      const transfereeDn = dnOf(call, transferee);
      // Pending from now on: a second transfer or a hold gets 409 while the REFER is out.
      call.transfer = { to, transferee, accepted: false };
      const res = await this.refer(call, transferee, transferor, to);
      if (call.state === 'released') return fail(409, 'the call was released meanwhile');
      if (res.status >= 200 && res.status < 300) {
        this.deps.log.info({ call: call.id, transferee: transfereeDn, to }, 'transfer by REFER accepted');
        return { ok: true, status: 202, json: { id: call.id, method: 'refer', transferee: transfereeDn, to } };
      }
      call.transfer = undefined;
      if (!REFER_UNSUPPORTED.has(res.status)) return partyFailure('the transferee refused the REFER', res);
    }
    const moved = this.transferByReinvite(call, transferee, transferor, to, route.targets);
    return { ok: true, status: 202, json: { id: call.id, method: 'reinvite', transferee: moved.from, to, newCallId: moved.id } };
  }

  /**
   * A request in the old dialog of a REFER based transfer. The transferee's NOTIFYs (RFC 3515
   * §2.4.4) get 200, and the final one ends the old dialog; its BYE ends it too; a re-INVITE
   * or UPDATE (phones often hold the transferor while the new call sets up) is accepted with
   * the media inactive. Anything on the transferor's leg, which has been sent BYE, gets 481.
   */
  onTransferDialogRequest(call: Call, leg: LegName, tx: ServerTransaction, req: SipRequest): void {
    const transfer = call.transfer;
    const dialog = call[leg].dialog;
    if (!transfer || !dialog || leg !== transfer.transferee) {
      tx.respond(createResponse(req, 481, undefined, { toTag: dialog?.localTag ?? randomToken(4) }));
      return;
    }
    const reply = (status: number, reason?: string): void => tx.respond(createResponse(req, status, reason, { toTag: dialog.localTag }));
    if (!dialog.acceptRemote(req)) {
      reply(500, 'CSeq Out of Order');
      return;
    }
    if (req.method === 'NOTIFY') {
      reply(200);
      const frag = /^SIP\/2\.0 (\d{3})/.exec(req.body.toString('latin1'))?.[1];
      const terminated = (getHeaderValues(req, 'subscription-state')[0] ?? '').trim().toLowerCase().startsWith('terminated');
      if ((frag !== undefined && Number(frag) >= 200) || terminated) this.finishReferTransfer(call, true, frag === undefined ? undefined : Number(frag));
      return;
    }
    if (req.method === 'BYE') {
      reply(200);
      this.finishReferTransfer(call, false, undefined);
      return;
    }
    // A new session offer in a dialog that is ending (phones often hold it while the new call
    // sets up) is declined; the dialog stays as it was (RFC 3261 §14.2).
    if (req.method === 'INVITE' || req.method === 'UPDATE') {
      reply(488, 'Call Being Transferred');
      return;
    }
    reply(200);
  }

  /** The leg the API request acts for: the named DN's, or the controlling party's. */
  private legOf(call: Call, dn: string | undefined): LegName | ControlResult {
    if (dn === undefined) return controllingLeg(call);
    if (dn === call.from) return 'a';
    if (dn === calleeDn(call)) return 'b';
    return fail(400, `${dn} is not a party of call ${call.id}`);
  }

  /** Why the call cannot take a control request now, if it cannot. */
  private busy(call: Call): ControlResult | undefined {
    if (call.state !== 'established') return fail(409, `the call is ${call.state}, not established`);
    if (call.transfer) return fail(409, 'the call is being transferred');
    if (call.reinvitePending) return fail(409, 'a re-INVITE is in progress on the call');
    return undefined;
  }

  private refer(call: Call, transferee: LegName, transferor: LegName, to: string): Promise<SipResponse> {
    const dialog = call[transferee].dialog;
    if (!dialog) return Promise.reject(new Error(`call ${call.id} has no dialog with the transferee`));
    const referTo = this.deps.contactFor(to, dialog.transport);
    const referredBy = this.deps.contactFor(presentedOf(call, transferor), dialog.transport);
    const req = dialog.createRequest('REFER', {
      headers: [
        { name: 'Refer-To', value: `<${referTo}>` },
        { name: 'Referred-By', value: `<${referredBy}>` },
      ],
    });
    return new Promise((resolve) => {
      const tx = this.deps.calls.send(
        req,
        dialog.destination,
        (res, info) => {
          if (res.status >= 200 && res.status < 300 && call.state !== 'released') this.startReferTransfer(call, transferee, transferor, to);
          else this.deps.calls.legFailed(call, transferee, res, info);
          resolve(res);
        },
        this.deps.calls.reopenOn(call, transferee),
      );
      if (!tx) resolve(createResponse(req, 503, 'Not Sent'));
    });
  }

  private startReferTransfer(call: Call, transferee: LegName, transferor: LegName, to: string): void {
    const ms = this.deps.transferOutcomeMs ?? 120_000;
    call.transfer = {
      to,
      transferee,
      accepted: true,
      timer: this.deps.clock.setTimer(ms, () => {
        this.deps.log.warn({ call: call.id }, 'the transferee did not report the transfer outcome; ending the old dialog');
        this.finishReferTransfer(call, true, undefined);
      }),
    };
    this.deps.calls.bye(call, transferor, [TRANSFERRED]);
    // The transferor is done with: a later release must not send it a second BYE.
    this.deps.calls.forgetDialog(call, transferor);
  }

  /**
   * Ends the old call of a REFER based transfer; `byeTransferee` unless it hung up itself.
   * `outcome` is the final status the transferee reported for its new call: a failure
   * (≥ 300) is the call's release cause (the transferor has left already: single step).
   */
  private finishReferTransfer(call: Call, byeTransferee: boolean, outcome: number | undefined): void {
    const transfer = call.transfer;
    if (!transfer || call.state === 'released') return;
    transfer.timer?.cancel();
    const failed = outcome !== undefined && outcome >= 300;
    if (byeTransferee) {
      this.deps.calls.bye(call, transfer.transferee, [failed ? { name: 'Reason', value: `SIP;cause=${outcome};text="transfer failed"` } : TRANSFERRED]);
    }
    this.deps.log.info({ call: call.id, to: transfer.to, outcome }, 'transfer by REFER finished');
    call.transfer = undefined;
    this.deps.calls.release(call, failed ? releaseCause(outcome) : 'normal', outcome, failed ? {} : { transferredTo: transfer.to });
  }

  /**
   * The transfer done by the server: BYE to the transferor, the old call released (cause
   * normal), and a new call (origin 'transfer') on the transferee's dialog towards `to`.
   */
  private transferByReinvite(call: Call, transferee: LegName, transferor: LegName, to: string, targets: Call['b']['targets']): Call {
    this.deps.calls.bye(call, transferor, [TRANSFERRED]);
    this.deps.calls.forgetDialog(call, transferor);
    // The transferee's dialog moves to the new call (with its 2xx retransmitter, if any).
    const moved = startTransferCall(this.deps.calls, this.deps.clock, call, transferee, to, targets);
    this.deps.calls.release(call, 'normal', undefined, { transferredTo: to, newCallId: moved.id });
    this.deps.log.info({ call: call.id, newCall: moved.id, transferee: moved.from, to }, 'transfer by re-INVITE');
    return moved;
  }

}
