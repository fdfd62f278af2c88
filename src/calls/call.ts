import type { CallRecord, CallRecordLeg } from '../registrar/binding.js';
import { getHeader } from '../sip/message.js';
import { hostPort } from '../util/host-port.js';
import type { TimerHandle } from '../util/clock.js';
import { CallStateMachine, type CallState } from './call-state.js';
import type { CalleeLeg, CallerLeg } from './leg.js';
import type { ReleaseCause } from './release-cause.js';

export type { CallState } from './call-state.js';
export type { ReleaseCause } from './release-cause.js';

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

const ORIGIN = { caller: 'inbound', originator: 'make-call', transferee: 'transfer' } as const;

/**
 * One call: two legs joined by the server (SPEC §6), and its state machine (call-state.ts):
 * every change of `state` is a `transition()` along the table.
 */
export class Call {
  readonly id: string;
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
  private readonly machine: CallStateMachine;

  constructor(init: {
    id: string;
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

  /**
   * 'inbound': a caller's INVITE; 'make-call': POST /calls rang `from`, then `to` (RFC 3725);
   * 'transfer': a re-INVITE based SingleStepTransfer joined the transferee (leg a, in the dialog
   * it already had with the server) to a new callee. Leg a's role says which.
   */
  get origin(): 'inbound' | 'make-call' | 'transfer' {
    return ORIGIN[this.a.role];
  }

  get state(): CallState {
    return this.machine.state;
  }

  /** The one way the state changes; throws on a move the table does not have. */
  transition(to: CallState): void {
    this.machine.transition(to);
  }

  /** A re-INVITE the server sent on either leg is not answered yet: a second one gets 491 (glare). */
  get reinvitePending(): boolean {
    return this.a.reinvitePending || this.b.reinvitePending;
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
  return call.b.target?.dn ?? call.to;
}

/** Both legs as a call record keeps them: each dialog's Call-ID, transport, address and DN. */
export function legsOf(call: Call): { caller: CallRecordLeg; callee: CallRecordLeg } {
  const src = call.a.tx?.source;
  const aDialog = call.a.dialog;
  const aDest = call.a.outTx?.destination ?? aDialog?.destination;
  const callerCallId = aDialog?.callId ?? (call.a.invite ? getHeader(call.a.invite, 'call-id') : undefined) ?? (call.a.outTx ? getHeader(call.a.outTx.request, 'call-id') : undefined);
  const bTx = call.b.tx;
  const bDest = bTx?.destination ?? call.b.dialog?.destination;
  const calleeCallId = call.b.dialog?.callId ?? (bTx ? getHeader(bTx.request, 'call-id') : undefined);
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

/** The record of a released call: its parties, times and cause, who ended it (`by`), and where a transfer took it. */
export function recordOf(call: Call, status: number | undefined, by: ReleasedBy, transfer: { transferredTo?: string; newCallId?: string }): CallRecord {
  const legs = legsOf(call);
  return {
    id: call.id,
    callId: legs.caller.callId ?? '',
    fromDn: call.from,
    caller: call.caller,
    toDn: calleeDn(call),
    startedAt: call.startedAt,
    ...(call.answeredAt !== undefined ? { answeredAt: call.answeredAt } : {}),
    endedAt: call.endedAt,
    cause: call.cause,
    ...(status !== undefined ? { status } : {}),
    releasedBy: by,
    legs,
    ...transfer,
  };
}
