import { getHeader, getHeaderValues, SIP_VERSION, type SipHeader, type SipRequest, type SipResponse } from '../sip/message.js';
import { cseqOf } from '../sip/cseq.js';
import { TransactionError } from './transaction-error.js';

/**
 * The ACK an INVITE client transaction sends for a 300-699 final response (RFC 3261
 * §17.1.1.3): Request-URI, Call-ID, From and the CSeq number of the original request with
 * method ACK, the To of the response (its tag included), one Via equal to the top Via of the
 * original request, and the original's Route headers. The ACK for a 2xx is the TU's (§13.2.2.4).
 */
export function buildAckForNon2xx(invite: SipRequest, response: SipResponse): SipRequest {
  const via = getHeader(invite, 'via');
  const from = getHeader(invite, 'from');
  const callId = getHeader(invite, 'call-id');
  const to = getHeader(response, 'to');
  if (via === undefined || from === undefined || callId === undefined || to === undefined) {
    throw new TransactionError('TRANSACTION_BAD_REQUEST', 'cannot build ACK: Via, From, Call-ID or To missing');
  }
  const headers: SipHeader[] = [
    { name: 'Via', value: via },
    { name: 'Max-Forwards', value: '70' },
    { name: 'From', value: from },
    { name: 'To', value: to },
    { name: 'Call-ID', value: callId },
    { name: 'CSeq', value: `${cseqOf(invite).seq} ACK` },
  ];
  for (const route of getHeaderValues(invite, 'route')) headers.push({ name: 'Route', value: route });
  return { kind: 'request', version: SIP_VERSION, method: 'ACK', uri: invite.uri, headers, body: Buffer.alloc(0) };
}
