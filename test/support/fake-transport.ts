/**
 * An in-memory SipTransport for transaction tests: it stands in for the network at the
 * transaction layer's boundary. It records every send (synchronously, at call time) and
 * can be told to fail sends with a TransportError.
 */
import type { SipRequest, SipResponse } from '../../src/sip/message.js';
import { addListener, notifyClosed, removeListener, type CloseCause, type Flow, type FlowListeners, type FlowListener, type FlowOrigin, type StreamTransport } from '../../src/transport/flow.js';
import type { TransportEvents } from '../../src/transport/transport-events.js';
import type { Destination, SendResult, SipTransport, Source, TransportName } from '../../src/transport/types.js';
import { TransportError } from '../../src/util/errors.js';
import { TypedEvents } from '../../src/util/typed-events.js';

/**
 * A flow without a socket: a test opens it, sends on it, and closes it as the network would
 * (`die`), in the order flow.ts gives: closed, its listeners, then `connectionClosed` on the
 * fake transport's events.
 */
export class FakeFlow implements Flow {
  state: Flow['state'] = 'open';
  closedBy: CloseCause | undefined;
  closeReason: string | undefined;
  private listeners: FlowListeners;

  constructor(
    readonly id: string,
    readonly transport: StreamTransport,
    readonly remoteAddress: string,
    readonly remotePort: number,
    readonly origin: FlowOrigin = 'outbound',
    private readonly events?: TypedEvents<TransportEvents>,
    readonly localAddress = '127.0.0.1',
    readonly localPort = 5060,
  ) {}

  onClose(listener: FlowListener): void {
    this.listeners = addListener(this.listeners, listener);
  }

  offClose(listener: FlowListener): void {
    this.listeners = removeListener(this.listeners, listener);
  }

  get listening(): number {
    return this.listeners === undefined ? 0 : this.listeners instanceof Set ? this.listeners.size : 1;
  }

  /** The network ends it: ETIMEDOUT by default (keep-alive probes unanswered). */
  die(by: CloseCause = 'keepalive-timeout', reason = 'error: ETIMEDOUT'): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.closedBy = by;
    this.closeReason = reason;
    const held = this.listeners;
    this.listeners = undefined;
    notifyClosed(held, this, (err) => {
      throw err;
    });
    const { id, transport, origin, remoteAddress, remotePort } = this;
    this.events?.emit('connectionClosed', { flow: this, id, transport, origin, remoteAddress, remotePort, closedBy: by, cause: reason });
  }
}

export type SentMessage =
  | { kind: 'request'; message: SipRequest; dest: Destination }
  | { kind: 'response'; message: SipResponse; source: Source };

type FailRule = (sent: SentMessage) => boolean;

export class FakeTransport implements SipTransport {
  readonly sent: SentMessage[] = [];
  readonly events = new TypedEvents<TransportEvents>();
  /** Every flow the fake opened, by id (flow-1, flow-2, …). */
  readonly flows = new Map<string, FakeFlow>();
  /** Destinations openFlow() was asked for, in order. */
  readonly opened: Destination[] = [];
  /** When set, openFlow() waits for this (a connect under way) and fails when it rejects. */
  connect: ((dest: Destination) => Promise<void>) | undefined;
  private rules: { match: FailRule; code: string; times: number }[] = [];
  private flowSeq = 0;

  /** A new open flow to dest's address. */
  newFlow(dest: { transport: TransportName; address: string; port: number }, origin: FlowOrigin = 'outbound'): FakeFlow {
    const flow = new FakeFlow(`flow-${++this.flowSeq}`, dest.transport === 'UDP' ? 'TCP' : dest.transport, dest.address, dest.port, origin, this.events);
    this.flows.set(flow.id, flow);
    return flow;
  }

  sentBy(transport: TransportName): { host: string; port: number } {
    return { host: '127.0.0.1', port: transport === 'TLS' ? 5061 : 5060 };
  }

  async openFlow(dest: Destination): Promise<Flow> {
    this.opened.push({ ...dest });
    await this.connect?.(dest);
    return this.newFlow(dest);
  }

  /** dest.flow while open, else an open flow to the same address, else a new one. */
  private flowFor(dest: Destination): FakeFlow {
    const named = dest.flow && this.flows.get(dest.flow.id);
    if (named && named.state === 'open') return named;
    for (const f of this.flows.values()) {
      if (f.state === 'open' && f.transport === dest.transport && f.remoteAddress === dest.address && f.remotePort === dest.port) return f;
    }
    return this.newFlow(dest);
  }

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
    if (dest.transport !== 'UDP') result.flow = this.flowFor(dest);
    return Promise.resolve(result);
  }

  sendResponse(res: SipResponse, requestSource: Source): Promise<SendResult> {
    const entry: SentMessage = { kind: 'response', message: res, source: { ...requestSource } };
    this.sent.push(entry);
    const err = this.failure(entry);
    if (err) return Promise.reject(err);
    const result: SendResult = { transport: requestSource.transport, address: requestSource.address, port: requestSource.port };
    if (requestSource.flow !== undefined) result.flow = requestSource.flow;
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
