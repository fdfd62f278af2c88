import type { SipRequest } from '../sip/message.js';
import { parseTopVia, replaceTopVia, type Via } from '../sip/via.js';
import type { TransportName } from '../transport/types.js';
import { newBranch } from '../util/ids.js';
import { TransactionError } from './transaction-error.js';
import { isRfc3261Branch } from './matching.js';

/**
 * The one place the top Via of a request the server sends is written (RFC 3261 §8.1.1.7,
 * §18.1.1; RFC 3581): the transport it goes over, this server's sent-by for that transport,
 * `rport`, and the branch — the one the request has when it is an RFC 3261 branch (a CANCEL
 * or the ACK of a non-2xx final carry their INVITE's), else a new one. A request without a
 * Via gets one; other parameters of an existing top Via are kept. Written once, when the
 * transaction is created (or the 2xx ACK sent): a re-send after a re-open goes out unchanged.
 * Returns the branch.
 */
export function writeTopVia(req: SipRequest, transport: TransportName, sentBy: { host: string; port: number }): string {
  let via: Via | undefined;
  try {
    via = parseTopVia(req);
  } catch (err) {
    throw new TransactionError('TRANSACTION_BAD_REQUEST', 'malformed top Via', { cause: err });
  }
  const given = via?.params.get('branch') ?? undefined;
  const branch = isRfc3261Branch(given) ? given : newBranch();
  const params = new Map(via?.params);
  params.set('branch', branch);
  if (!params.has('rport')) params.set('rport', null);
  replaceTopVia(req, { protocol: 'SIP/2.0', transport, host: sentBy.host, port: sentBy.port, params });
  return branch;
}
