import type { ReleaseCause, ReleasedBy } from './call.js';

export interface CallEvent {
  /** The server's call id (GET /calls/{id}). */
  callId: string;
  /** The DN the event is about (null: a caller that is no known DN). */
  dn: string | null;
  /** The other party (null likewise). */
  otherDn: string | null;
  /** The caller's DN, null when the server cannot vouch for one (SPEC §9). */
  from: string | null;
  /** The caller's number as presented to the callee. */
  caller: string;
  to: string;
  time: number;
}

export interface CallEvents extends Record<string, unknown> {
  EventDialing: CallEvent;
  EventRinging: CallEvent;
  EventEstablished: CallEvent;
  EventHeld: CallEvent;
  EventRetrieved: CallEvent;
  /** `dn` is the party that ended the call (`releasedBy` caller or callee), else the caller. */
  EventReleased: CallEvent & { cause: ReleaseCause; releasedBy: ReleasedBy; status?: number; transferredTo?: string; newCallId?: string };
}
