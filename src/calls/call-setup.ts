import { Dialog } from '../dialog/dialog.js';
import type { Directory } from '../directory/directory.js';
import { getHeader, SIP_VERSION, type SipHeader, type SipRequest, type SipResponse } from '../sip/message.js';
import { tagOf } from '../sip/name-addr.js';
import type { ClientTransaction, ClientTransactionUser, FinalInfo } from '../transaction/types.js';
import type { Flow } from '../transport/flow.js';
import type { Destination, Source } from '../transport/types.js';
import { newCallId, newTag } from '../util/ids.js';
import { calleeDn, type Call, type ReleasedBy } from './call.js';
import { sendRequest, type CalleeLeg, type LegContext } from './leg.js';
import { failureText, releaseCause, type ReleaseCause } from './release-cause.js';
import type { RouteTarget } from './routing.js';
import { fromUri, hostOf } from './sip-parties.js';

/** What call setup hands back to the call manager: the callee answered, the call ends, an event. */
export interface SetupOutcomes {
  established(call: Call, res: SipResponse, tx: ClientTransaction): void;
  release(call: Call, cause: ReleaseCause, status?: number, opts?: { by?: ReleasedBy }): void;
  hangUpOriginator(call: Call, reason: string): void;
  emit(name: 'EventRinging', call: Call, dn: string | null, otherDn: string | null): void;
}

export interface CallSetupDeps {
  legs: LegContext;
  directory: Directory;
  /** A DN's address of record on this server (sip:DN@sip-address), for To of a request to its phone. */
  aorFor(user: string): string;
}

/**
 * Call setup towards the callee (SPEC §6): the INVITE to each of the route's targets in turn
 * (failing over on a local failure or 503 while dialing, the failed target going out of
 * service), its provisional responses passed to the caller, its final response mapped back
 * (a failure releases the call with its cause), and 2xx nobody wants ACKed and BYEd.
 */
export class CallSetup {
  constructor(
    private readonly deps: CallSetupDeps,
    private readonly calls: SetupOutcomes,
  ) {}

  /** Starts the callee leg of a call along `targets`. */
  connect(call: Call, targets: RouteTarget[]): void {
    call.b.targets = targets;
    call.b.index = 0;
    this.tryTarget(call);
  }

  private tryTarget(call: Call): void {
    const target = call.b.targets[call.b.index];
    if (!target) return;
    const { body, contentType, displayName: display, maxForwards } = call.offer;
    const host = this.deps.legs.contactFor(call.caller, target.destination.transport);
    const headers: SipHeader[] = [
      { name: 'Max-Forwards', value: String(Math.max(0, maxForwards - 1)) },
      // Through the edge proxy the phone registered by (RFC 3327 Path).
      ...(target.route ?? []).map((value) => ({ name: 'Route', value })),
      { name: 'From', value: `${display !== undefined ? `${display} ` : ''}<${fromUri(call.caller, host)}>;tag=${newTag()}` },
      // A phone is addressed by its AOR, its Contact only in the Request-URI (SPEC §10); a trunk or
      // service by the number at its address.
      { name: 'To', value: `<${target.type === 'extension' ? this.deps.aorFor(target.dn) : target.requestUri}>` },
      { name: 'Call-ID', value: newCallId(hostOf(host)) },
      { name: 'CSeq', value: '1 INVITE' },
      { name: 'Contact', value: `<${host}>` },
      ...(contentType !== undefined && body.length > 0 ? [{ name: 'Content-Type', value: contentType }] : []),
    ];
    const invite: SipRequest = { kind: 'request', method: 'INVITE', uri: target.requestUri, version: SIP_VERSION, headers, body };
    // SPEC §5.4: no re-open within a transaction to a voip-service DN; it fails over instead.
    const user = new CalleeInvite(this, call, target.type !== 'voip-service', target.otherFlow);
    try {
      call.b.tx = this.deps.legs.transactions.sendRequest(invite, target.destination, user);
      call.b.inviteUsers.push(user);
    } catch (err) {
      this.deps.legs.log.error({ err, call: call.id }, 'could not send the INVITE to the callee');
      call.a.answer(500);
      if (call.origin !== 'inbound') this.calls.hangUpOriginator(call, 'SIP;cause=500;text="could not call the other party"');
      this.calls.release(call, 'rejected', 500);
    }
  }

  /** A provisional response from the callee (CalleeInvite). */
  onCalleeProvisional(call: Call, res: SipResponse): void {
    call.b.provisional();
    if (call.state === 'released' || res.status === 100) return;
    if (call.state === 'dialing') {
      call.transition('ringing');
      this.calls.emit('EventRinging', call, calleeDn(call), call.from);
    }
    call.a.answer(res.status, res.reason, [], res);
  }

  /** The callee's final response, received or local (CalleeInvite). */
  onCalleeFinal(call: Call, res: SipResponse, info: FinalInfo, tx: ClientTransaction): void {
    if (res.status >= 200 && res.status < 300) {
      if (call.state === 'released' || call.b.cancelled) {
        this.ackAndBye(res, tx);
        return;
      }
      this.calls.established(call, res, tx);
      return;
    }
    if (call.state === 'released') return;
    const target = call.b.targets[call.b.index];
    const localFailure = info.local !== false;
    // RFC 5626 §7: the edge proxy lost the phone's flow; the phone's next flow, if it has one.
    const nextFlow = !localFailure && res.status === 430 && !call.b.cancelled ? target?.flowFailed?.() : undefined;
    if (target && nextFlow) {
      call.b.targets[call.b.index] = { ...nextFlow, dn: target.dn, type: target.type };
      this.deps.legs.log.info({ call: call.id, dn: target.dn }, '430 Flow Failed: trying the next flow of the phone');
      this.tryTarget(call);
      return;
    }
    if (localFailure && target) {
      this.deps.directory.setState(target.dn, 'out-of-service', info.local === 'timeout' ? 'INVITE timed out' : `transport error: ${info.cause.code}: ${info.cause.message}`);
    }
    if ((localFailure || res.status === 503) && call.b.index + 1 < call.b.targets.length && call.state === 'dialing') {
      call.b.index++;
      this.deps.legs.log.info({ call: call.id, from: target?.dn, to: call.b.targets[call.b.index]?.dn }, 'failing over to the next route');
      this.tryTarget(call);
      return;
    }
    const status = info.local === 'timeout' ? 408 : res.status;
    const why = failureText(status, info);
    const reason = localFailure ? [{ name: 'Reason', value: `SIP;cause=${status};text="${why}"` }] : [];
    call.a.answer(status, localFailure ? undefined : res.reason, reason);
    if (call.origin !== 'inbound') this.calls.hangUpOriginator(call, `SIP;cause=${status};text="${localFailure ? why : 'called party did not answer'}"`);
    this.calls.release(call, releaseCause(status, info), status, { by: localFailure ? 'server' : 'callee' });
  }

  /**
   * A 2xx after the first final response: the callee retransmitting its 2xx (our ACK was lost,
   * or is not sent yet) gets the same ACK again (§13.2.2.4); a 2xx from another fork, or one
   * for a call already gone, is ACKed and BYEd.
   */
  onAdditional2xx(call: Call, res: SipResponse, tx: ClientTransaction): void {
    const dialog = call.b.dialog;
    if (dialog && call.state !== 'released' && tagOf(getHeader(res, 'to') ?? '') === dialog.remoteTag) {
      call.b.resendAck();
      return;
    }
    this.ackAndBye(res, tx);
  }

  /** A 2xx nobody wants (after CANCEL, or from a second fork): ACK it, then BYE (§15). */
  ackAndBye(res: SipResponse, tx: ClientTransaction): void {
    const { legs } = this.deps;
    const dialog = Dialog.asUac(tx.request, res, tx.destination, '<sip:b2bua@invalid>');
    legs.transactions.sendAck(dialog.createRequest('ACK', { cseq: dialog.localSeq }), dialog.destination).catch((err: unknown) => legs.log.warn({ err }, 'ACK not sent'));
    sendRequest(legs, dialog.createRequest('BYE', { headers: [{ name: 'Reason', value: 'SIP;cause=487;text="call already ended"' }] }), dialog.destination, () => undefined);
  }
}

/**
 * The user of an INVITE to the callee. While the call lasts it hands the responses to
 * CallSetup. Once the call is released (letGo) it keeps no more than a late response needs
 * — the callee leg only while a CANCEL waits there for the first provisional; a 2xx is ACKed
 * and BYEd from the transaction's own request; anything else is dropped, as for a released
 * call before — so that the call, its dialogs and messages are not kept for the 32 s the
 * transaction still absorbs retransmissions (timers D and M).
 */
class CalleeInvite implements ClientTransactionUser {
  /** The callee leg after the call is released, while it holds a CANCEL back for the first provisional. */
  private leg: CalleeLeg | undefined;

  constructor(
    private readonly setup: CallSetup,
    private call: Call | undefined,
    readonly reopen: boolean,
    private readonly nextFlow?: (dead: Flow) => Destination | undefined,
  ) {}

  otherFlow(dead: Flow): Destination | undefined {
    return this.nextFlow?.(dead);
  }

  letGo(): void {
    const leg = this.call?.b;
    this.leg = leg?.cancelOnProvisional ? leg : undefined;
    this.call = undefined;
  }

  onProvisional(res: SipResponse): void {
    if (this.call) this.setup.onCalleeProvisional(this.call, res);
    else this.leg?.provisional();
  }

  onFinal(res: SipResponse, info: FinalInfo, tx: ClientTransaction): void {
    if (this.call) this.setup.onCalleeFinal(this.call, res, info, tx);
    else if (res.status >= 200 && res.status < 300) this.setup.ackAndBye(res, tx);
  }

  onAdditional2xx(res: SipResponse, _source: Source, tx: ClientTransaction): void {
    if (this.call) this.setup.onAdditional2xx(this.call, res, tx);
    else this.setup.ackAndBye(res, tx);
  }
}
