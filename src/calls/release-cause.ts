import { REOPEN_FAILED } from '../transaction/flow-recovery.js';
import type { FinalInfo } from '../transaction/types.js';

/** SPEC §6 release causes. */
export type ReleaseCause =
  | 'normal'
  | 'busy'
  | 'no-answer'
  | 'rejected'
  | 'not-found'
  | 'transport-failure'
  | 'stale-connection-reopen-failed'
  | 'timeout'
  | 'cancelled'
  | 'administrative';

/**
 * The release cause a final response stands for: `status` (a party's answer, a status the
 * server chose, or the 408/503 a client transaction made up) and, for a request the server
 * sent, how it ended (`info`): a transport error is 'transport-failure', or
 * 'stale-connection-reopen-failed' when it was a dead connection that could not be re-opened.
 * `during` 'dialog': the request was in an established call's dialog, where 481 means the
 * party has left (cause 'normal'); while setting up it is a refusal like any other.
 */
export function releaseCause(status: number, info?: FinalInfo, during: 'setup' | 'dialog' = 'setup'): ReleaseCause {
  if (info?.local === 'transport-error') return info.cause.code === REOPEN_FAILED ? 'stale-connection-reopen-failed' : 'transport-failure';
  if (during === 'dialog' && status === 481) return 'normal';
  if (status === 486 || status === 600) return 'busy';
  if (status === 404 || status === 484 || status === 604) return 'not-found';
  if (status === 480) return 'no-answer';
  if (status === 408) return 'timeout';
  if (status === 487) return 'cancelled';
  if (status === 503) return 'transport-failure';
  return 'rejected';
}

/**
 * The text of the Reason header the server sends when a request it sent failed that way: no
 * response (a timeout, or a 408), a transport error, a stale connection, or 481 in a dialog.
 */
export function failureText(status: number, info: FinalInfo): string {
  if (info.local === 'transport-error') return info.cause.code === REOPEN_FAILED ? 'stale connection could not be re-opened' : 'transport failure';
  if (status === 481) return 'the other party has left the call';
  return 'no response';
}
