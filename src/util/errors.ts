/**
 * Every error the server raises on purpose is a SipServerError with a stable `code` that
 * callers, logs and tests can match on, and an optional `cause`.
 */
export class SipServerError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/**
 * A message that cannot be parsed; `reason` is short enough to be a SIP reason phrase and
 * `status` is the response a request with this fault gets (400, or e.g. 505 for a bad version).
 */
export class SipParseError extends SipServerError {
  constructor(
    readonly reason: string,
    options?: { cause?: unknown; status?: number },
  ) {
    super('SIP_PARSE', reason, options);
    this.status = options?.status ?? 400;
  }

  readonly status: number;
}

/** A transport could not deliver (connect refused/timed out, socket error, TLS failure). */
export class TransportError extends SipServerError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** Capture export (HEP) could not do its part; never raised into the SIP path, only logged and counted. */
export class CaptureError extends SipServerError {
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** The configuration is invalid; `problems` holds one line per fault. */
export class ConfigError extends SipServerError {
  constructor(readonly problems: string[]) {
    super('CONFIG_INVALID', problems.join('\n'));
  }
}
