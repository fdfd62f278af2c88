import type { Clock } from '../util/clock.js';
import { randomToken } from '../util/ids.js';
import { Call, dnOf, presentedOf, type LegName } from './call.js';
import { CalleeLeg, CallerLeg } from './leg.js';
import type { CallManager } from './call-manager.js';

/**
 * The new call of a transfer the server carries out itself (RFC 3725 flow I): the
 * transferee's dialog with the server moves out of `call` into a new call (origin
 * 'transfer') towards `to` — an offerless INVITE to the new party, whose offer reaches the
 * transferee in a re-INVITE and whose answer goes back in the ACK. `call` no longer holds
 * that dialog; the caller decides what becomes of `call` and of the other party.
 */
export function startTransferCall(
  calls: CallManager,
  clock: Clock,
  call: Call,
  transferee: LegName,
  to: string,
  targets: Call['b']['targets'],
  /** Told of the new call before its INVITE is sent (which may fail at once). */
  beforeConnect?: (moved: Call) => void,
): Call {
  const dialog = call[transferee].dialog;
  const moved = new Call({
    id: randomToken(8),
    from: dnOf(call, transferee),
    caller: presentedOf(call, transferee),
    to,
    state: 'dialing',
    startedAt: clock.now(),
    // The transferee's dialog (with its 2xx retransmitter, if any) moves to the new call.
    a: CallerLeg.transferee(calls.legs, dnOf(call, transferee), call[transferee]),
    b: new CalleeLeg(calls.legs),
    // No offer: the new party makes one, and the transferee answers it (RFC 3725 flow I).
    offer: { body: Buffer.alloc(0), maxForwards: 70 },
    sdpTo: call.sdpTo[transferee] ? { a: call.sdpTo[transferee] } : {},
  });
  calls.track(moved, dialog);
  calls.emit('EventDialing', moved, moved.from, to);
  beforeConnect?.(moved);
  calls.connect(moved, targets);
  return moved;
}
