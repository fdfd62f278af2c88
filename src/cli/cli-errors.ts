import { SipServerError } from '../util/errors.js';

/** The command line is wrong (unknown command, missing or extra argument, bad flag value): exit 2 with the usage. */
export class UsageError extends SipServerError {
  constructor(message: string) {
    super('CLI_USAGE', message);
  }
}

/**
 * The control API could not be asked or refused (exit 1). `code` says which:
 * `API_UNREACHABLE` (no connection, no answer in time), `API_STATUS` (an HTTP error status;
 * `status` and the API's `{"error"}` text in the message), `API_BAD_ANSWER` (not the JSON expected),
 * `API_OFF` (the configuration file turns the control API off).
 */
export class ControlApiError extends SipServerError {
  constructor(
    code: 'API_UNREACHABLE' | 'API_STATUS' | 'API_BAD_ANSWER' | 'API_OFF',
    message: string,
    readonly status?: number,
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
  }
}
