/**
 * The little SDP (RFC 4566 / 3264) the server itself writes: it passes bodies through
 * untouched, except when it changes a session on its own (HoldCall, RetrieveCall, a
 * re-INVITE based transfer). Then the party must see the same session go on: the `o=` line
 * keeps its username and session id and its version goes up by one (RFC 3264 §8).
 */

export type MediaDirection = 'sendrecv' | 'sendonly' | 'recvonly' | 'inactive';

const DIRECTION_LINE = /^a=(sendrecv|sendonly|recvonly|inactive)[ \t]*$/;

function lines(sdp: Buffer): string[] {
  const text = sdp.toString('latin1');
  const out = text.split(/\r?\n/);
  if (out.at(-1) === '') out.pop();
  return out;
}

function join(out: string[]): Buffer {
  return Buffer.from(`${out.join('\r\n')}\r\n`, 'latin1');
}

/** True when the body puts the media on hold: sendonly/inactive, or the old c=0.0.0.0 form. */
export function isHoldSdp(sdp: Buffer): boolean {
  const text = sdp.toString('latin1');
  return /^a=(sendonly|inactive)[ \t]*\r?$/m.test(text) || /^c=IN IP4 0\.0\.0\.0[ \t]*\r?$/m.test(text);
}

/**
 * The same session with one media direction for all of it: every direction attribute is
 * removed and `a=<direction>` is written at session level (before the first m= line).
 */
export function withDirection(sdp: Buffer, direction: MediaDirection): Buffer {
  const out = lines(sdp).filter((l) => !DIRECTION_LINE.test(l));
  const firstMedia = out.findIndex((l) => l.startsWith('m='));
  out.splice(firstMedia === -1 ? out.length : firstMedia, 0, `a=${direction}`);
  return join(out);
}

/**
 * `next` as the continuation of the session described by `previous` (the last SDP the party
 * received in this dialog): `next`'s o= line gets `previous`'s username, session id and
 * version + 1. Without a usable previous o= line, `next` is returned as it is.
 */
export function continueSession(previous: Buffer | undefined, next: Buffer): Buffer {
  const prev = previous ? lines(previous).find((l) => l.startsWith('o=')) : undefined;
  const fields = prev?.slice(2).split(' ');
  if (!fields || fields.length < 6) return next;
  const [user, sessId, version] = fields;
  let bumped: string;
  try {
    bumped = (BigInt(version ?? '') + 1n).toString();
  } catch {
    return next;
  }
  return join(
    lines(next).map((l) => {
      if (!l.startsWith('o=')) return l;
      const own = l.slice(2).split(' ');
      return `o=${[user, sessId, bumped, ...own.slice(3)].join(' ')}`;
    }),
  );
}

/** The direction an answer takes to an offer with `offered` (RFC 3264 §6.1). */
function answering(offered: MediaDirection): MediaDirection {
  if (offered === 'sendonly') return 'recvonly';
  if (offered === 'recvonly') return 'sendonly';
  return offered;
}

/** The direction a session description sets (session level or its first media), default sendrecv. */
export function directionOf(sdp: Buffer): MediaDirection {
  for (const l of lines(sdp)) {
    const m = DIRECTION_LINE.exec(l);
    if (m) return m[1] as MediaDirection;
  }
  return /^c=IN IP4 0\.0\.0\.0[ \t]*\r?$/m.test(sdp.toString('latin1')) ? 'sendonly' : 'sendrecv';
}

/** `session` with the direction that answers `offer` (e.g. an offer to hold, sendonly, gets recvonly). */
export function mirrorDirection(session: Buffer, offer: Buffer): Buffer {
  return withDirection(session, answering(directionOf(offer)));
}

/**
 * An answer to `offer` that accepts every stream and holds it (a=inactive, c=0.0.0.0, the
 * discard port): what the server gives a MakeCall's `from` when it must ACK before `to` has
 * answered (RFC 3725 §5's caution about flow I). Each m= line keeps its media, protocol and
 * first format (with its rtpmap), so a later re-INVITE can continue the session.
 */
export function heldAnswer(offer: Buffer, sessionId: string): Buffer {
  const out = ['v=0', `o=sip-server ${sessionId} 1 IN IP4 0.0.0.0`, 's=-', 'c=IN IP4 0.0.0.0', 't=0 0'];
  const offered = lines(offer);
  for (const m of offered.filter((l) => l.startsWith('m='))) {
    const [media, , proto, fmt] = m.slice(2).split(' ');
    out.push(`m=${media ?? 'audio'} 9 ${proto ?? 'RTP/AVP'} ${fmt ?? '0'}`);
    const rtpmap = offered.find((l) => l.startsWith(`a=rtpmap:${fmt ?? ''} `));
    if (rtpmap) out.push(rtpmap);
    out.push('a=inactive');
  }
  return join(out);
}
