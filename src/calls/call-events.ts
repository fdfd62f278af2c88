import type { ReleaseCause } from './call.js';

export interface CallEvent {
  /** The server's call id (GET /calls/{id}). */
  callId: string;
  /** The DN the event is about. */
  dn: string;
  /** The other party. */
  otherDn: string;
  from: string;
  to: string;
  time: number;
}

export interface CallEvents extends Record<string, unknown> {
  EventDialing: CallEvent;
  EventRinging: CallEvent;
  EventEstablished: CallEvent;
  EventHeld: CallEvent;
  EventRetrieved: CallEvent;
  EventReleased: CallEvent & { cause: ReleaseCause; status?: number };
}
