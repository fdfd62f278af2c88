import { SipServerError } from '../util/errors.js';

/**
 * An error a route handler throws to answer with an HTTP status and `{"error": message}`.
 * Anything else a handler throws becomes a 500 and a log line.
 */
export class HttpError extends SipServerError {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {
    super(`HTTP_${status}`, message);
  }
}
