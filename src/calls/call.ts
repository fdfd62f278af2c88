import type { Dialog } from '../dialog/dialog.js';
import type { OkRetransmitter } from '../dialog/ok-retransmitter.js';
import type { CallRecordLeg } from '../registrar/binding.js';
import { getHeaderValues, type SipHeader, type SipRequest } from '../sip/message.js';
import { hostPort } from '../util/host-port.js';
import type { ClientTransaction, ServerTransaction } from '../transaction/types.js';
import type { TimerHandle } from '../util/clock.js';
import type { RouteTarget } from './routing.js';
import { CallStateMachine, type CallState } from './call-state.js';
import type { ReleaseCause } from './release-cause.js';

export type { CallState } from './call-state.js';
export type { ReleaseCause } from './release-cause.js';

/**
 * The caller's leg. For a call that came in, the server is its UAS (`tx`, `invite`); for a
 * MakeCall (third-party call control) the server called this party first, as its UAC
 * (`outTx`), and `tx`/`invite` are absent.
 */
export interface CallerLeg {
  tx?: ServerTransaction;
  invite?: SipRequest;
  outTx?: ClientTransaction;
  /** MakeCall: the 2xx from `from` has been ACKed. */
  acked?: boolean;
  /**
   * MakeCall: `from` had to be ACKed before `to` answered, with a held answer (`to`'s answer
   * reaches it later in a re-INVITE); `ackTimer` is the deadline for that ACK.
   */
  ackedHeld?: boolean;
  ackTimer?: TimerHandle;
  tag: string;
  dialog?: Dialog;
  ok?: OkRetransmitter;
  /** The party's Allow header names REFER (SingleStepTransfer then uses REFER). */
  allowsRefer?: boolean;
}

/** The callee's leg: the server is its UAC; `targets` are tried in order (trunk failover). */
export interface CalleeLeg {
  targets: RouteTarget[];
  index: number;
  tx?: ClientTransaction;
  dialog?: Dialog;
  /** Retransmits our 2xx to a re-INVITE from the callee until its ACK. */
  ok?: OkRetransmitter;
  cancelled: boolean;
  /**
   * A CANCEL the server owes the callee but may not send yet: no provisional response has
   * arrived (§9.1); the first one releases it. Holds the CANCEL's extra headers (Reason).
   */
  cancelOnProvisional?: SipHeader[];
  allowsRefer?: boolean;
  /** The ACK sent for the callee's 2xx, sent again if that 2xx is retransmitted. */
  ack?: SipRequest;
}

export type LegName = 'a' | 'b';

/** Who ended a call: one of its parties (hanging up, refusing) or the server. */
export type ReleasedBy = 'caller' | 'callee' | 'server';

/** A REFER based SingleStepTransfer in progress: the transferee was REFERred to `to`. */
export interface PendingTransfer {
  to: string;
  transferee: LegName;
  /** The REFER got a 2xx: the transferor has been sent BYE. */
  accepted: boolean;
  /** Ends the old dialog if the transferee neither reports the outcome nor hangs up. */
  timer?: TimerHandle;
}

/** The session offer sent to the callee: the caller's INVITE body, or (MakeCall) `from`'s 2xx body. */
export interface Offer {
  body: Buffer;
  contentType?: string;
  displayName?: string;
  maxForwards: number;
}

/**
 * One call: two legs joined by the server (SPEC §6), and its state machine (call-state.ts):
 * every change of `state` is a `transition()` along the table.
 */
export class Call {
  readonly id: string;
  /**
   * 'inbound': a caller's INVITE; 'make-call': POST /calls rang `from`, then `to` (RFC 3725);
   * 'transfer': a re-INVITE based SingleStepTransfer joined the transferee (leg a, in the dialog
   * it already had with the server) to a new callee.
   */
  readonly origin: 'inbound' | 'make-call' | 'transfer';
  /**
   * The caller's DN as the server knows it (its registration, a fixed contact's address, or a
   * MakeCall's `from`); null when the caller is no DN the server can vouch for (SPEC §9).
   */
  readonly from: string | null;
  /** The caller's number as presented to the callee (From user part): the DN, or what a trunk or an unknown caller gave. */
  readonly caller: string;
  /** The dialled number. */
  readonly to: string;
  readonly startedAt: number;
  answeredAt?: number;
  endedAt?: number;
  cause?: ReleaseCause;
  readonly a: CallerLeg;
  readonly b: CalleeLeg;
  offer: Offer;
  /** The last session description the server sent each party (for HoldCall/RetrieveCall/transfer). */
  sdpTo: { a?: Buffer; b?: Buffer };
  /** Set while the call is on hold: who put it there — a party's own re-INVITE, or HoldCall on the API for that leg. */
  heldBy?: { leg: LegName; by: 'party' | 'api' };
  transfer?: PendingTransfer;
  /** An in-dialog INVITE relayed and not yet answered, per leg: a second one gets 491. */
  readonly pendingReinvite = { a: false, b: false };
  private readonly machine: CallStateMachine;

  constructor(init: {
    id: string;
    origin: Call['origin'];
    from: string | null;
    caller: string;
    to: string;
    state: 'dialing' | 'ringing';
    startedAt: number;
    a: CallerLeg;
    b: CalleeLeg;
    offer: Offer;
    sdpTo?: { a?: Buffer; b?: Buffer };
  }) {
    this.id = init.id;
    this.origin = init.origin;
    this.from = init.from;
    this.caller = init.caller;
    this.to = init.to;
    this.startedAt = init.startedAt;
    this.a = init.a;
    this.b = init.b;
    this.offer = init.offer;
    this.sdpTo = init.sdpTo ?? {};
    this.machine = new CallStateMachine(init.id, init.state);
  }

  get state(): CallState {
    return this.machine.state;
  }

  /** The one way the state changes; throws on a move the table does not have. */
  transition(to: CallState): void {
    this.machine.transition(to);
  }
}

/**
 * The leg of the party the control API acts for when no DN is named: the callee of a call
 * that came in (an agent answering a customer) and `from` of a MakeCall (the agent dialled).
 */
export function controllingLeg(call: Call): LegName {
  return call.origin === 'make-call' ? 'a' : 'b';
}

/** The DN on one leg (null for a caller that is no known DN). */
export function dnOf(call: Call, leg: LegName): string | null {
  return leg === 'a' ? call.from : calleeDn(call);
}

/** The number a leg's party goes by towards others: its DN, or the number it presented. */
export function presentedOf(call: Call, leg: LegName): string {
  return leg === 'a' ? call.caller : calleeDn(call);
}

/** The callee DN the call reached or is trying now. */
export function calleeDn(call: Call): string {
  return call.b.targets[call.b.index]?.dn ?? call.to;
}

/** Both legs as a call record keeps them: each dialog's Call-ID, transport, address and DN. */
export function legsOf(call: Call): { caller: CallRecordLeg; callee: CallRecordLeg } {
  const src = call.a.tx?.source;
  const aDialog = call.a.dialog;
  const aDest = call.a.outTx?.destination ?? aDialog?.destination;
  const callerCallId = aDialog?.callId ?? (call.a.invite ? getHeaderValues(call.a.invite, 'call-id')[0] : undefined) ?? (call.a.outTx ? getHeaderValues(call.a.outTx.request, 'call-id')[0] : undefined);
  const bTx = call.b.tx;
  const bDest = bTx?.destination ?? call.b.dialog?.destination;
  const calleeCallId = call.b.dialog?.callId ?? (bTx ? getHeaderValues(bTx.request, 'call-id')[0] : undefined);
  const caller: CallRecordLeg = {
    ...(callerCallId !== undefined ? { callId: callerCallId } : {}),
    ...(src ? { transport: src.transport, remote: hostPort(src.address, src.port) } : aDest ? { transport: aDest.transport, remote: hostPort(aDest.address, aDest.port) } : {}),
    ...(call.from !== null ? { dn: call.from } : {}),
  };
  const callee: CallRecordLeg = {
    ...(calleeCallId !== undefined ? { callId: calleeCallId } : {}),
    ...(bDest ? { transport: bDest.transport, remote: hostPort(bDest.address, bDest.port) } : {}),
    dn: calleeDn(call),
  };
  return { caller, callee };
}
