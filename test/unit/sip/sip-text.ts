/** Test helper: joins lines with CRLF and ends the header section with a blank line. */
export function sip(lines: string[], body = ''): Buffer {
  return Buffer.from(`${lines.join('\r\n')}\r\n\r\n${body}`, 'utf8');
}

/** A typical INVITE with an SDP body, about 900 bytes. */
export const INVITE_LINES = [
  'INVITE sip:1002@192.0.2.10:5060;transport=tcp SIP/2.0',
  'Via: SIP/2.0/TCP 192.0.2.21:5060;branch=z9hG4bK-524287-1---3c1ec5f8a5e1;rport',
  'Max-Forwards: 70',
  'Contact: <sip:1001@192.0.2.21:5060;transport=tcp>;+sip.instance="<urn:uuid:00000000-0000-1000-8000-AABBCCDDEEFF>"',
  'To: <sip:1002@192.0.2.10>',
  'From: "Alice Example" <sip:1001@192.0.2.10>;tag=9fxced76sl',
  'Call-ID: 3848276298220188511@192.0.2.21',
  'CSeq: 1 INVITE',
  'Allow: INVITE, ACK, CANCEL, BYE, NOTIFY, REFER, MESSAGE, OPTIONS, INFO, SUBSCRIBE',
  'Content-Type: application/sdp',
  'Supported: replaces, norefersub, extended-refer, timer, X-cisco-serviceuri',
  'User-Agent: Example Softphone 5.4.12 release 100411',
  'Allow-Events: presence, kpml, talk',
];

export const SDP = [
  'v=0',
  'o=- 13760799956958020 13760799956958020 IN IP4 192.0.2.21',
  's=example',
  'c=IN IP4 192.0.2.21',
  't=0 0',
  'm=audio 51372 RTP/AVP 0 8 101',
  'a=rtpmap:0 PCMU/8000',
  'a=rtpmap:8 PCMA/8000',
  'a=rtpmap:101 telephone-event/8000',
  'a=fmtp:101 0-15',
  'a=sendrecv',
  '',
].join('\r\n');

export function invite(): Buffer {
  return sip([...INVITE_LINES, `Content-Length: ${Buffer.byteLength(SDP)}`], SDP);
}
