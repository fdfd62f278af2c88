import { Dialog } from '../dialog/dialog.js';
import { getHeader, SIP_VERSION, type SipRequest, type SipResponse } from '../sip/message.js';
import type { TransactionLayer } from '../transaction/transaction-layer.js';
import type { ClientTransaction, FinalInfo } from '../transaction/types.js';
import type { TransportName } from '../transport/types.js';
import type { Clock } from '../util/clock.js';
import { newCallId, newTag, randomToken } from '../util/ids.js';
import type { Logger } from '../util/logger.js';
import { Call } from './call.js';
import { CalleeLeg, CallerLeg } from './leg.js';
import { releaseCause } from './release-cause.js';
import { allowsRefer } from './sip-parties.js';
import { heldAnswer } from './sdp.js';
import type { CallManager } from './call-manager.js';
import type { Router } from './routing.js';

export interface MakeCallDeps {
  calls: CallManager;
  /** RFC 3261 T1, ms: `from`'s 2xx is ACKed within 16·T1 (it gives up after 64·T1). */
  t1: number;
  transactions: TransactionLayer;
  router: Router;
  clock: Clock;
  log: Logger;
  contactFor(user: string, transport: TransportName): string;
  /** A DN's address of record (sip:DN@sip-address): To of the INVITE to `from`'s phone. */
  aorFor(user: string): string;
}

export type MakeCallResult = { ok: true; call: Call } | { ok: false; status: number; error: string };

/**
 * MakeCall (third-party call control, RFC 3725 flow I): the server rings `from` with an
 * INVITE without SDP; when `from` answers (its 2xx carries the offer) the server calls `to`
 * with that offer, and when `to` answers, ACKs `to` and sends `from` the ACK carrying `to`'s
 * answer. If `to` fails, `from` gets its ACK and a BYE with a Reason. Events: EventRinging
 * (from), EventDialing (from → to), then the usual EventRinging (to), EventEstablished,
 * EventReleased.
 */
export class MakeCall {
  /** Calls whose `from` already gave EventRinging (a 180 and a 183 make one event). */
  private readonly ringingSent = new WeakSet<Call>();

  constructor(private readonly deps: MakeCallDeps) {}

  start(from: string, to: string): MakeCallResult {
    const fromRoute = this.deps.router.route(from);
    if (fromRoute.kind === 'reject') return { ok: false, status: fromRoute.status === 404 ? 404 : 409, error: `from: ${fromRoute.reason}` };
    const origin = fromRoute.targets[0];
    if (!origin || origin.type === 'trunk') return { ok: false, status: 400, error: `from: ${from} is not an extension` };
    const toRoute = this.deps.router.route(to);
    if (toRoute.kind === 'reject') return { ok: false, status: toRoute.status === 404 ? 404 : 409, error: `to: ${toRoute.reason}` };

    const transport = origin.destination.transport;
    const contact = this.deps.contactFor(to, transport);
    const host = contact.replace(/^sips?:[^@]*@/, '').split(';')[0] ?? '';
    const call = new Call({
      id: randomToken(8),
      from,
      caller: from,
      to,
      state: 'ringing',
      startedAt: this.deps.clock.now(),
      a: CallerLeg.originator(this.deps.calls.legs, from, newTag()),
      b: new CalleeLeg(this.deps.calls.legs),
      offer: { body: Buffer.alloc(0), maxForwards: 70 },
    });
    const invite: SipRequest = {
      kind: 'request',
      method: 'INVITE',
      uri: origin.requestUri,
      version: SIP_VERSION,
      headers: [
        { name: 'Max-Forwards', value: '70' },
        { name: 'From', value: `<sip:${encodeURIComponent(to)}@${host}>;tag=${call.a.tag}` },
        { name: 'To', value: `<${this.deps.aorFor(from)}>` },
        { name: 'Call-ID', value: newCallId(host) },
        { name: 'CSeq', value: '1 INVITE' },
        { name: 'Contact', value: `<${contact}>` },
      ],
      body: Buffer.alloc(0),
    };
    this.deps.calls.track(call);
    try {
      call.a.outTx = this.deps.transactions.sendRequest(invite, origin.destination, {
        onProvisional: (res) => {
          if (res.status > 100 && call.state === 'ringing' && !call.a.dialog) this.ringing(call);
        },
        onFinal: (res, info, tx) => this.originatorAnswered(call, res, info, tx, toRoute.targets, contact),
      });
    } catch (err) {
      this.deps.log.error({ err }, 'MakeCall: could not send the INVITE to from');
      this.deps.calls.release(call, 'rejected', 500);
      return { ok: false, status: 500, error: 'could not call from' };
    }
    return { ok: true, call };
  }

  private ackHeld(call: Call): void {
    const dialog = call.a.dialog;
    if (!dialog || call.a.acked || call.state === 'released' || call.state === 'established') return;
    const held = heldAnswer(call.offer.body, String(this.deps.clock.now()));
    call.a.ackAnswer(call.offer.body.length > 0 ? { body: held, contentType: 'application/sdp' } : {}, true);
    if (call.offer.body.length > 0) call.sdpTo.a = held;
    this.deps.log.info({ call: call.id }, 'MakeCall: to still rings; from ACKed with a held answer');
  }

  private ringing(call: Call): void {
    if (this.ringingSent.has(call)) return;
    this.ringingSent.add(call);
    this.deps.calls.emit('EventRinging', call, call.from, call.to);
  }

  private originatorAnswered(call: Call, res: SipResponse, info: FinalInfo, tx: ClientTransaction, targets: Call['b']['targets'], contact: string): void {
    if (res.status < 200 || res.status >= 300) {
      if (call.state === 'released') return;
      this.deps.calls.release(call, releaseCause(res.status, info), res.status, { by: info.local === false ? 'caller' : 'server' });
      return;
    }
    // The destination is pinned to the flow the INVITE went out on (client-transaction-base).
    call.a.dialog = Dialog.asUac(tx.request, res, tx.destination, `<${contact}>`);
    call.a.allowsRefer = allowsRefer(res);
    if (call.state === 'released') {
      // Released while `from` was ringing and it answered anyway: ACK and BYE (the call stays
      // out of the call table: nothing more belongs to it).
      this.deps.calls.hangUpOriginator(call, 'SIP;cause=487;text="call released"');
      return;
    }
    this.deps.calls.track(call, call.a.dialog);
    const type = getHeader(res, 'content-type');
    call.offer = { body: res.body, ...(type !== undefined ? { contentType: type } : {}), maxForwards: 70 };
    // RFC 3725 flow I sends `to`'s answer in the ACK; a desk phone may ring for a minute, and
    // `from` ends the session if its 2xx is not ACKed within 64·T1. So if `to` has not answered
    // by 16·T1, `from` is ACKed with a held answer and gets `to`'s session in a re-INVITE later.
    call.a.ackTimer = this.deps.clock.setTimer(16 * this.deps.t1, () => this.ackHeld(call));
    call.transition('dialing');
    this.deps.calls.emit('EventDialing', call, call.from, call.to);
    this.deps.calls.connect(call, targets);
  }
}
