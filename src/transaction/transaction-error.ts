import { SipServerError, TransportError } from '../util/errors.js';

/**
 * Errors the transaction layer raises on purpose. Stable codes:
 * - `TRANSACTION_ILLEGAL_TRANSITION`: a state machine was asked to move along an edge its
 *   transition table does not have (a bug in the layer, never caused by network input);
 * - `TRANSACTION_STATE`: the TU asked for something the transaction's state forbids (e.g. a
 *   second final response, a provisional after the final, resend() after the final);
 * - `TRANSACTION_BAD_REQUEST`: the TU handed over a request the layer cannot send (ACK,
 *   missing Via or CSeq, CSeq method different from the request method);
 * - `TRANSACTION_EXISTS`: a client transaction with the same branch and method is live.
 */
export class TransactionError extends SipServerError {
  constructor(
    code: 'TRANSACTION_ILLEGAL_TRANSITION' | 'TRANSACTION_STATE' | 'TRANSACTION_BAD_REQUEST' | 'TRANSACTION_EXISTS',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
  }
}

/** Whatever a transport rejected with, as a TransportError (unexpected errors keep their cause). */
export function toTransportError(err: unknown): TransportError {
  if (err instanceof TransportError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new TransportError('TRANSPORT_FAILED', `transport failed: ${message}`, { cause: err });
}
