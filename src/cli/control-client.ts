import { ControlApiError } from './cli-errors.js';
import type { ControlTarget } from './control-target.js';

/** What the control API answered: the body as sent (for --json) and parsed. */
export interface ApiAnswer<T> {
  status: number;
  text: string;
  json: T;
}

/**
 * A client of the control API over Node's fetch: one request per call, the bearer token when
 * there is one, every failure a ControlApiError whose message is ready to print.
 */
export class ControlClient {
  constructor(
    readonly target: ControlTarget,
    private readonly timeoutMs = 10_000,
  ) {}

  get<T>(path: string): Promise<ApiAnswer<T>> {
    return this.json<T>('GET', path);
  }

  delete<T>(path: string): Promise<ApiAnswer<T>> {
    return this.json<T>('DELETE', path);
  }

  /** A text answer (GET /metrics). */
  async text(path: string): Promise<string> {
    const res = await this.request('GET', path);
    const text = await this.body(res, path);
    if (!res.ok) throw this.statusError(res.status, text);
    return text;
  }

  private async json<T>(method: string, path: string): Promise<ApiAnswer<T>> {
    const res = await this.request(method, path);
    const text = await this.body(res, path);
    if (!res.ok) throw this.statusError(res.status, text);
    try {
      return { status: res.status, text, json: JSON.parse(text) as T };
    } catch {
      throw new ControlApiError('API_BAD_ANSWER', `${method} ${this.target.url}${path} answered ${res.status} but not with JSON: is this a sip-server control API?`, res.status);
    }
  }

  private async request(method: string, path: string): Promise<Response> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.target.token !== undefined) headers.authorization = `Bearer ${this.target.token}`;
    try {
      return await fetch(`${this.target.url}${path}`, { method, headers, signal: AbortSignal.timeout(this.timeoutMs) });
    } catch (err) {
      throw new ControlApiError('API_UNREACHABLE', `cannot reach the control API at ${this.target.url}: ${this.why(err)}`, undefined, { cause: err });
    }
  }

  private async body(res: Response, path: string): Promise<string> {
    try {
      return await res.text();
    } catch (err) {
      throw new ControlApiError('API_UNREACHABLE', `cannot reach the control API at ${this.target.url}: the answer to ${path} broke off (${this.why(err)})`, res.status, { cause: err });
    }
  }

  /** "404 unknown call abc"; for 401, what to do about the token. */
  private statusError(status: number, text: string): ControlApiError {
    const message = errorText(text) ?? (text.trim().slice(0, 200) || 'no error text');
    if (status === 401) {
      const hint =
        this.target.token === undefined
          ? 'no token was given: pass --token, set SIP_SERVER_TOKEN, or --config the server\'s file (its http-token)'
          : `the token from ${this.target.tokenSource ?? '--token'} is wrong`;
      return new ControlApiError('API_STATUS', `${status} ${message}: ${hint}`, status);
    }
    return new ControlApiError('API_STATUS', `${status} ${message}`, status);
  }

  /** Why fetch failed, short: the system error code (ECONNREFUSED …), a timeout, or the message. */
  private why(err: unknown): string {
    if (err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError')) return `no answer within ${this.timeoutMs / 1000} s`;
    const cause = err instanceof Error ? err.cause : undefined;
    const code = codeOf(cause) ?? codeOf(err);
    const detail = cause instanceof Error && cause.message !== '' ? cause.message : err instanceof Error ? err.message : String(err);
    if (code === 'ECONNREFUSED') return 'connection refused (is the server running, with the control API on this address and port?)';
    if (code !== undefined && !detail.includes(code)) return `${code}: ${detail}`;
    return detail;
  }
}

/** The `error` of an API error body `{"error": "…"}`, if that is what it is. */
function errorText(text: string): string | undefined {
  try {
    const body = JSON.parse(text) as unknown;
    if (typeof body === 'object' && body !== null && typeof (body as { error?: unknown }).error === 'string') return (body as { error: string }).error;
  } catch {
    /* not JSON: the caller shows the text itself */
    return undefined;
  }
  return undefined;
}

/** A system error's code, or that of the first of an AggregateError (several addresses tried). */
function codeOf(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'string') return code;
  const first = (err as { errors?: unknown[] }).errors?.[0];
  return first === undefined ? undefined : codeOf(first);
}
