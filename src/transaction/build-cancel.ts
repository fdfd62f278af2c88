import { cseqOf } from '../sip/cseq.js';
import { getHeader, getHeaderValues, SIP_VERSION, type SipHeader, type SipRequest } from '../sip/message.js';
import { TransactionError } from './transaction-error.js';

/**
 * The CANCEL of a pending request (RFC 3261 §9.1): the same Request-URI, Call-ID, From, To
 * (without a tag) and CSeq number with method CANCEL, one Via equal to the top Via of the
 * request (same branch, so the far end matches it to the INVITE), and the request's Route
 * headers. `extra` headers (e.g. Reason, RFC 3326) are appended.
 */
export function buildCancel(request: SipRequest, extra: SipHeader[] = []): SipRequest {
  const via = getHeader(request, 'via');
  const from = getHeader(request, 'from');
  const to = getHeader(request, 'to');
  const callId = getHeader(request, 'call-id');
  if (via === undefined || from === undefined || to === undefined || callId === undefined) {
    throw new TransactionError('TRANSACTION_BAD_REQUEST', 'cannot build CANCEL: Via, From, To or Call-ID missing');
  }
  const headers: SipHeader[] = [
    { name: 'Via', value: via },
    { name: 'Max-Forwards', value: '70' },
    ...getHeaderValues(request, 'route').map((value) => ({ name: 'Route', value })),
    { name: 'From', value: from },
    { name: 'To', value: to },
    { name: 'Call-ID', value: callId },
    { name: 'CSeq', value: `${cseqOf(request).seq} CANCEL` },
    ...extra,
  ];
  return { kind: 'request', version: SIP_VERSION, method: 'CANCEL', uri: request.uri, headers, body: Buffer.alloc(0) };
}
