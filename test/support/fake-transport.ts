/**
 * An in-memory SipTransport for transaction tests: it stands in for the network at the
 * transaction layer's boundary. It records every send (synchronously, at call time) and
 * can be told to fail sends with a TransportError.
 */
import type { SipRequest, SipResponse } from '../../src/sip/message.js';
import type { Destination, SendResult, SipTransport, Source } from '../../src/transport/types.js';
import { TransportError } from '../../src/util/errors.js';

export type SentMessage =
  | { kind: 'request'; message: SipRequest; dest: Destination }
  | { kind: 'response'; message: SipResponse; source: Source };

type FailRule = (sent: SentMessage) => boolean;

export class FakeTransport implements SipTransport {
  readonly sent: SentMessage[] = [];
  private rules: { match: FailRule; code: string; times: number }[] = [];
  private flowSeq = 0;

  /** Makes the next `times` sends matching `match` (default: any) reject with a TransportError. */
  failNext(opts: { match?: FailRule; code?: string; times?: number } = {}): void {
    this.rules.push({ match: opts.match ?? (() => true), code: opts.code ?? 'ECONNREFUSED', times: opts.times ?? 1 });
  }

  /** Every send from now on fails. */
  failAll(code = 'ECONNRESET'): void {
    this.rules.push({ match: () => true, code, times: Number.POSITIVE_INFINITY });
  }

  sendRequest(req: SipRequest, dest: Destination): Promise<SendResult> {
    const entry: SentMessage = { kind: 'request', message: req, dest: { ...dest } };
    this.sent.push(entry);
    const err = this.failure(entry);
    if (err) return Promise.reject(err);
    const result: SendResult = { transport: dest.transport, address: dest.address, port: dest.port };
    if (dest.transport !== 'UDP') result.flowId = dest.flowId ?? `flow-${++this.flowSeq}`;
    return Promise.resolve(result);
  }

  sendResponse(res: SipResponse, requestSource: Source): Promise<SendResult> {
    const entry: SentMessage = { kind: 'response', message: res, source: { ...requestSource } };
    this.sent.push(entry);
    const err = this.failure(entry);
    if (err) return Promise.reject(err);
    const result: SendResult = { transport: requestSource.transport, address: requestSource.address, port: requestSource.port };
    if (requestSource.flowId !== undefined) result.flowId = requestSource.flowId;
    return Promise.resolve(result);
  }

  requests(method?: string): SipRequest[] {
    return this.sent.flatMap((s) => (s.kind === 'request' && (method === undefined || s.message.method === method) ? [s.message] : []));
  }

  responses(status?: number): SipResponse[] {
    return this.sent.flatMap((s) => (s.kind === 'response' && (status === undefined || s.message.status === status) ? [s.message] : []));
  }

  clear(): void {
    this.sent.length = 0;
  }

  private failure(entry: SentMessage): TransportError | undefined {
    const rule = this.rules.find((r) => r.times > 0 && r.match(entry));
    if (!rule) return undefined;
    rule.times--;
    this.rules = this.rules.filter((r) => r.times > 0);
    return new TransportError(rule.code, `fake transport: ${rule.code}`);
  }
}

/** Lets pending promise callbacks (send results, failures) run. */
export function flushPromises(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
