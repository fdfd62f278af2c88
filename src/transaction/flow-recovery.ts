import { getHeader } from '../sip/message.js';
import { topVia } from '../sip/via.js';
import type { CloseCause, Flow, StreamTransport } from '../transport/flow.js';
import type { TransportEvents } from '../transport/transport-events.js';
import type { Destination } from '../transport/types.js';
import type { Clock } from '../util/clock.js';
import { hostPort } from '../util/host-port.js';
import type { Logger } from '../util/logger.js';
import { TypedEvents } from '../util/typed-events.js';
import type { ClientTransaction } from './types.js';

/** A client transaction as the events name it. */
export interface TransactionRef {
  method: string;
  branch: string;
  callId: string;
}

/**
 * How a connection was found dead, as the events say it: `keepalive-timeout` (ETIMEDOUT:
 * keep-alive probes or TCP_USER_TIMEOUT unanswered), `reset` (RST), `write-error`, `error`
 * (any other socket error), `peer-closed` (FIN), or `local` (the server closed it).
 */
export type DetectedBy = 'keepalive-timeout' | 'reset' | 'write-error' | 'error' | 'peer-closed' | 'local';

export function detectedBy(cause: CloseCause): DetectedBy {
  return cause === 'unframeable' || cause === 'stopping' ? 'local' : cause;
}

interface ConnectionFacts {
  connectionId: string;
  transport: StreamTransport;
  /** address:port of the far end of the dead connection. */
  remote: string;
  detectedBy: DetectedBy;
  cause: string;
  time: number;
}

export interface FlowRecoveryEvents extends Record<string, unknown> {
  /** A connection died; `active` are the client transactions that were waiting on it. */
  ConnectionStale: ConnectionFacts & { active: TransactionRef[] };
  /**
   * A new connection replaced it and `resent` went out again on it, unchanged. `otherFlow`:
   * no connection was opened — the phone's other live flow of its outbound instance
   * (RFC 5626) took them.
   */
  ConnectionReopened: ConnectionFacts & { destination: string; newConnectionId: string; reopenMs: number; resent: TransactionRef[]; otherFlow?: true };
  /** No new connection could be opened (or re-open was not allowed): `failed` ended with a transport error. */
  ConnectionReopenFailed: ConnectionFacts & { destination: string; reason: string; reopenMs: number; failed: TransactionRef[] };
}

/** The TransportError a transaction fails with when its connection could not be re-opened. */
export const REOPEN_FAILED = 'REOPEN_FAILED';
/** … when its TU asked for no re-open (voip-service) and its connection died. */
export const FLOW_DIED = 'FLOW_DIED';

export interface FlowRecoveryDeps {
  transport: { events: TypedEvents<TransportEvents> };
  clock: Clock;
  log: Logger;
}

/**
 * Re-open and re-send (SPEC §5.3), on when `sip-enable-tcp-keep-alive` is. The doing is the
 * client transaction's own (client-transaction-base.ts, `flowClosed`): it follows the flow it
 * sent on, and when that dies while it waits for a final response it re-opens to its
 * destination and re-sends, or fails. This is what they share: whether to act at all (not
 * while the server stops), and the report of each dead connection — a log line and the
 * `Connection*` events (and so metrics and /events), as things happen:
 *   - `ConnectionStale` once per connection, when the transport reports it closed — after
 *     every transaction waiting on it has joined (flow.ts gives the order) and started its
 *     re-open;
 *   - per destination the transactions re-opened to, `ConnectionReopened` or
 *     `ConnectionReopenFailed` once every one of them is through; the transactions whose TU
 *     asked for no re-open (voip-service) in one `ConnectionReopenFailed` of their own.
 */
export class FlowRecovery {
  readonly events: TypedEvents<FlowRecoveryEvents>;
  private stopping = false;
  /** Flows whose close listeners are running: transactions join until the transport's report. */
  private readonly dying = new Map<Flow, DeadFlow>();

  constructor(private readonly deps: FlowRecoveryDeps) {
    this.events = new TypedEvents<FlowRecoveryEvents>((err, name) => deps.log.error({ err, event: name }, 'flow recovery listener failed'));
    deps.transport.events.on('connectionClosed', (e) => this.closed(e));
  }

  /** False once the server stops: its own closes are not recovered from. */
  get acting(): boolean {
    return !this.stopping;
  }

  stop(): void {
    this.stopping = true;
  }

  /** A transaction waiting on `flow` found it dead; its outcome goes into the returned report. */
  join(flow: Flow, tx: ClientTransaction): FlowDeathReport {
    let dead = this.dying.get(flow);
    if (!dead) {
      dead = new DeadFlow(flow, this.deps, this.events);
      this.dying.set(flow, dead);
    }
    dead.active.push(tx);
    return dead;
  }

  /** Step 3 of flow.ts: the connection is reported closed, with every transaction that joined. */
  private closed(e: TransportEvents['connectionClosed']): void {
    const dead = this.dying.get(e.flow) ?? (this.stopping ? undefined : new DeadFlow(e.flow, this.deps, this.events));
    this.dying.delete(e.flow);
    dead?.stale();
  }
}

/** What a transaction tells the report of its dead flow. */
export interface FlowDeathReport {
  /** Its TU asked for no re-open; it failed with FLOW_DIED. */
  refused(tx: ClientTransaction): void;
  /** It re-opened to `dest`: re-sent on `flow`, or failed there (`err`: the re-send's). */
  resent(tx: ClientTransaction, dest: Destination, startedAt: number, flow: Flow, err?: unknown): void;
  /** It could not re-open to `dest`, for `reason`; it failed with REOPEN_FAILED. */
  reopenFailed(tx: ClientTransaction, dest: Destination, startedAt: number, reason: string): void;
  /**
   * It got its final response (or timed out) while the re-open to `dest` was under way, which
   * gave `flow` or failed for `reason`: nothing to re-send, nothing to fail.
   */
  skipped(tx: ClientTransaction, dest: Destination, startedAt: number, outcome: { flow?: Flow; reason?: string }): void;
  /** It goes to another live flow of the same phone instead of re-opening (told before it re-sends). */
  switching(tx: ClientTransaction): void;
  /** … and was re-sent there (`err`: the re-send's failure). */
  switched(tx: ClientTransaction, dest: Destination & { flow: Flow }, startedAt: number, err?: unknown): void;
}

interface DestinationGroup {
  destination: string;
  startedAt: number;
  waiting: number;
  resent: ClientTransaction[];
  failed: ClientTransaction[];
  resendFailures: { tx: ClientTransaction; err: unknown }[];
  flow?: Flow;
  reason?: string;
  otherFlow?: true;
}

class DeadFlow implements FlowDeathReport {
  readonly active: ClientTransaction[] = [];
  private facts: ConnectionFacts | undefined;
  private logger: Logger | undefined;
  private readonly groups = new Map<string, DestinationGroup>();
  private readonly refusedTxs: ClientTransaction[] = [];
  /** Transactions that went to another flow of their phone: not waited for by any re-open. */
  private readonly switchers = new Set<ClientTransaction>();

  constructor(
    private readonly flow: Flow,
    private readonly deps: FlowRecoveryDeps,
    private readonly events: TypedEvents<FlowRecoveryEvents>,
  ) {}

  refused(tx: ClientTransaction): void {
    this.refusedTxs.push(tx);
  }

  resent(tx: ClientTransaction, dest: Destination, startedAt: number, flow: Flow, err?: unknown): void {
    const g = this.group(dest, startedAt);
    g.flow ??= flow;
    if (err === undefined) g.resent.push(tx);
    else g.resendFailures.push({ tx, err });
    this.done(g);
  }

  reopenFailed(tx: ClientTransaction, dest: Destination, startedAt: number, reason: string): void {
    const g = this.group(dest, startedAt);
    g.reason ??= reason;
    g.failed.push(tx);
    this.done(g);
  }

  switching(tx: ClientTransaction): void {
    this.switchers.add(tx);
  }

  switched(tx: ClientTransaction, dest: Destination & { flow: Flow }, startedAt: number, err?: unknown): void {
    // One report per flow switched to: a phone's other flow is one destination.
    const key = `flow ${dest.flow.id}`;
    let g = this.groups.get(key);
    if (!g) {
      const waiting = [...this.switchers].filter((t) => t.destination.flow === dest.flow).length;
      g = { destination: hostPort(dest.address, dest.port), startedAt, waiting, resent: [], failed: [], resendFailures: [], flow: dest.flow, otherFlow: true };
      this.groups.set(key, g);
    }
    g.waiting--;
    if (err === undefined) g.resent.push(tx);
    else g.resendFailures.push({ tx, err });
    this.done(g);
  }

  skipped(_tx: ClientTransaction, dest: Destination, startedAt: number, outcome: { flow?: Flow; reason?: string }): void {
    const g = this.group(dest, startedAt);
    if (outcome.flow) g.flow ??= outcome.flow;
    if (outcome.reason !== undefined) g.reason ??= outcome.reason;
    this.done(g);
  }

  /** `ConnectionStale`, then what is already through (nothing, unless a TU refused re-open). */
  stale(): void {
    const { flow } = this;
    const time = this.deps.clock.now();
    this.facts = {
      connectionId: flow.id,
      transport: flow.transport,
      remote: hostPort(flow.remoteAddress, flow.remotePort),
      detectedBy: detectedBy(flow.closedBy ?? 'peer-closed'),
      cause: flow.closeReason ?? 'closed',
      time,
    };
    const n = this.active.length;
    this.log().warn({ cause: this.facts.cause, active: n, detectedAt: time }, n > 0 ? 'connection died with transactions waiting: re-opening' : 'connection died');
    this.events.emit('ConnectionStale', { ...this.facts, active: this.active.map(refOf) });
    for (const g of this.groups.values()) this.done(g);
    if (this.refusedTxs.length === 0) return;
    const first = this.refusedTxs[0]?.destination;
    const destination = first ? hostPort(first.address, first.port) : this.facts.remote;
    const reason = 'connection died; no re-open for this destination (voip-service)';
    this.events.emit('ConnectionReopenFailed', { ...this.facts, destination, reason, reopenMs: 0, failed: this.refusedTxs.map(refOf) });
  }

  private group(dest: Destination, startedAt: number): DestinationGroup {
    const destination = hostPort(dest.address, dest.port);
    const key = `${dest.transport} ${destination}`;
    let g = this.groups.get(key);
    if (!g) {
      const waiting = this.active.filter((tx) => tx.reopen && !this.switchers.has(tx) && sameDestination(tx.destination, dest)).length;
      g = { destination, startedAt, waiting, resent: [], failed: [], resendFailures: [] };
      this.groups.set(key, g);
    }
    g.waiting--;
    return g;
  }

  /** Reports a destination once all its transactions are through and the connection was reported stale. */
  private done(g: DestinationGroup): void {
    const facts = this.facts;
    if (!facts || g.waiting > 0) return;
    g.waiting = Number.POSITIVE_INFINITY; // reported: never again
    const { destination } = g;
    const reopenMs = this.deps.clock.now() - g.startedAt;
    const log = this.log();
    if (g.reason !== undefined) {
      log.error({ destination, reason: g.reason, reopenMs }, 'could not re-open the connection: its transactions fail');
      this.events.emit('ConnectionReopenFailed', { ...facts, destination, reason: g.reason, reopenMs, failed: g.failed.map(refOf) });
      return;
    }
    for (const { tx, err } of g.resendFailures) log.warn({ err, branch: refOf(tx).branch }, 're-send on the new connection failed');
    const newConnectionId = g.flow?.id ?? '';
    log.info({ destination, newConnection: newConnectionId, reopenMs, resent: g.resent.length }, g.otherFlow ? "requests re-sent on the phone's other flow" : 'connection re-opened, requests re-sent');
    this.events.emit('ConnectionReopened', { ...facts, destination, newConnectionId, reopenMs, resent: g.resent.map(refOf), ...(g.otherFlow ? { otherFlow: true as const } : {}) });
  }

  /** The child logger is made only when a line is written. */
  private log(): Logger {
    const f = this.flow;
    this.logger ??= this.deps.log.child({ connection: f.id, remote: hostPort(f.remoteAddress, f.remotePort), transport: f.transport, detectedBy: detectedBy(f.closedBy ?? 'peer-closed') });
    return this.logger;
  }
}

function sameDestination(a: Destination, b: Destination): boolean {
  return a.transport === b.transport && a.address === b.address && a.port === b.port;
}

function refOf(tx: ClientTransaction): TransactionRef {
  return { method: tx.request.method, branch: topVia(tx.request).params.get('branch') ?? '', callId: getHeader(tx.request, 'call-id') ?? '' };
}
