import { describe, expect, it } from 'vitest';
import { continueSession, directionOf, heldAnswer, isHoldSdp, mirrorDirection, withDirection } from '../../../src/calls/sdp.js';

const sdp = (...lines: string[]): Buffer => Buffer.from(`${lines.join('\r\n')}\r\n`, 'latin1');

const OFFER = sdp('v=0', 'o=alice 2890844526 2890844527 IN IP4 192.0.2.1', 's=-', 'c=IN IP4 192.0.2.1', 't=0 0', 'a=sendrecv', 'm=audio 49170 RTP/AVP 0', 'a=recvonly', 'm=video 51372 RTP/AVP 31', 'a=rtpmap:31 H261/90000');

describe('SDP the server writes itself (hold, retrieve, transfer)', () => {
  it('withDirection removes every direction attribute and writes one at session level, before the first m= line', () => {
    expect(withDirection(OFFER, 'sendonly').toString()).toBe(
      sdp('v=0', 'o=alice 2890844526 2890844527 IN IP4 192.0.2.1', 's=-', 'c=IN IP4 192.0.2.1', 't=0 0', 'a=sendonly', 'm=audio 49170 RTP/AVP 0', 'm=video 51372 RTP/AVP 31', 'a=rtpmap:31 H261/90000').toString(),
    );
  });

  it('withDirection on a body with LF line ends and no media puts the attribute at the end, CRLF', () => {
    expect(withDirection(Buffer.from('v=0\no=- 1 1 IN IP4 h\ns=-\n'), 'inactive').toString()).toBe('v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\na=inactive\r\n');
  });

  it('continueSession keeps the previous username and session id and raises its version, past 2^53', () => {
    const next = sdp('v=0', 'o=bob 1 1 IN IP4 198.51.100.7', 's=-', 'c=IN IP4 198.51.100.7', 't=0 0', 'm=audio 3456 RTP/AVP 0');
    expect(continueSession(OFFER, next).toString()).toContain('o=alice 2890844526 2890844528 IN IP4 198.51.100.7\r\n');
    const big = sdp('v=0', 'o=a 1 18446744073709551615 IN IP4 h');
    expect(continueSession(big, next).toString()).toContain('o=a 1 18446744073709551616 IN IP4 198.51.100.7');
  });

  it('continueSession leaves the body alone without a usable previous o= line', () => {
    const next = sdp('v=0', 'o=bob 1 1 IN IP4 h');
    expect(continueSession(undefined, next)).toBe(next);
    expect(continueSession(sdp('v=0', 'o=broken'), next)).toBe(next);
    expect(continueSession(sdp('v=0', 'o=a 1 x IN IP4 h'), next)).toBe(next);
  });

  it('isHoldSdp: sendonly, inactive or c=0.0.0.0 hold; sendrecv and recvonly do not', () => {
    expect(isHoldSdp(withDirection(OFFER, 'sendonly'))).toBe(true);
    expect(isHoldSdp(withDirection(OFFER, 'inactive'))).toBe(true);
    expect(isHoldSdp(sdp('v=0', 'c=IN IP4 0.0.0.0', 'm=audio 1 RTP/AVP 0'))).toBe(true);
    expect(isHoldSdp(withDirection(OFFER, 'sendrecv'))).toBe(false);
    expect(isHoldSdp(sdp('v=0', 'm=audio 1 RTP/AVP 0', 'a=recvonly'))).toBe(false);
  });

  it('heldAnswer accepts every offered stream on hold: same media and first format (with its rtpmap), discard port, inactive', () => {
    expect(heldAnswer(OFFER, '77').toString()).toBe(
      sdp('v=0', 'o=sip-server 77 1 IN IP4 0.0.0.0', 's=-', 'c=IN IP4 0.0.0.0', 't=0 0', 'm=audio 9 RTP/AVP 0', 'a=inactive', 'm=video 9 RTP/AVP 31', 'a=rtpmap:31 H261/90000', 'a=inactive').toString(),
    );
  });

  it('mirrorDirection answers a hold offer (sendonly) with recvonly and an inactive one with inactive', () => {
    const session = sdp('v=0', 'o=s 1 1 IN IP4 h', 's=-', 't=0 0', 'm=audio 1 RTP/AVP 0');
    expect(directionOf(withDirection(OFFER, 'sendonly'))).toBe('sendonly');
    expect(directionOf(sdp('v=0', 'c=IN IP4 0.0.0.0', 'm=audio 1 RTP/AVP 0'))).toBe('sendonly');
    expect(mirrorDirection(session, withDirection(OFFER, 'sendonly')).toString()).toContain('a=recvonly');
    expect(mirrorDirection(session, withDirection(OFFER, 'inactive')).toString()).toContain('a=inactive');
    expect(mirrorDirection(session, sdp('v=0', 'm=audio 1 RTP/AVP 0')).toString()).toContain('a=sendrecv');
  });
});
