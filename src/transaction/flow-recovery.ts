import { getHeaderValues } from '../sip/message.js';
import { topVia } from '../sip/via.js';
import type { TransportEvents } from '../transport/transport-events.js';
import type { TransportLayer } from '../transport/transport-layer.js';
import type { Destination, TransportName } from '../transport/types.js';

type StreamName = Exclude<TransportName, 'UDP'>;
import type { Clock } from '../util/clock.js';
import { TransportError } from '../util/errors.js';
import { hostPort } from '../util/host-port.js';
import type { Logger } from '../util/logger.js';
import { ReportQueue, type Defer } from '../util/report-queue.js';
import { TypedEvents } from '../util/typed-events.js';
import type { TransactionLayer } from './transaction-layer.js';
import type { ClientTransaction } from './types.js';

/** A client transaction as the events name it. */
export interface TransactionRef {
  method: string;
  branch: string;
  callId: string;
}

/**
 * How a connection was found dead: `keepalive-timeout` (ETIMEDOUT: keep-alive probes or
 * TCP_USER_TIMEOUT unanswered), `reset` (RST), `write-error`, `error` (any other socket
 * error), `peer-closed` (FIN), or `local` (the server closed it, e.g. unframeable input).
 */
export type DetectedBy = 'keepalive-timeout' | 'reset' | 'write-error' | 'error' | 'peer-closed' | 'local';

interface ConnectionFacts {
  connectionId: string;
  transport: StreamName;
  /** address:port of the far end of the dead connection. */
  remote: string;
  detectedBy: DetectedBy;
  cause: string;
  time: number;
}

export interface FlowRecoveryEvents extends Record<string, unknown> {
  /** A connection died; `active` are the client transactions that were waiting on it. */
  ConnectionStale: ConnectionFacts & { active: TransactionRef[] };
  /** A new connection replaced it and `resent` went out again on it, unchanged. */
  ConnectionReopened: ConnectionFacts & { destination: string; newConnectionId: string; reopenMs: number; resent: TransactionRef[] };
  /** No new connection could be opened (or re-open was not allowed): `failed` ended with a transport error. */
  ConnectionReopenFailed: ConnectionFacts & { destination: string; reason: string; reopenMs: number; failed: TransactionRef[] };
}

export interface FlowRecoveryDeps {
  transport: Pick<TransportLayer, 'openConnection'> & { events: TypedEvents<TransportEvents> };
  transactions: Pick<TransactionLayer, 'activeClientTransactionsOnFlow'>;
  clock: Clock;
  log: Logger;
  /** How reports are put off to a later turn (the server: setImmediate). */
  defer: Defer;
}

/**
 * Reports (log lines, events) wait for the re-opens in flight, but no longer than this after
 * the last re-open started or finished: a connect that hangs does not hold them up.
 */
export const REPORT_MAX_WAIT_MS = 20;

/** The TransportError a transaction fails with when its connection could not be re-opened. */
export const REOPEN_FAILED = 'REOPEN_FAILED';
/** … when its TU asked for no re-open (voip-service) and its connection died. */
export const FLOW_DIED = 'FLOW_DIED';

export function detectedBy(e: TransportEvents['connectionClosed']): DetectedBy {
  switch (e.errorCode) {
    case 'ETIMEDOUT':
      return 'keepalive-timeout';
    case 'ECONNRESET':
      return 'reset';
    case 'EPIPE':
      return 'write-error';
    case undefined:
      return e.cause === 'remote closed' || e.cause === 'closed' ? 'peer-closed' : 'local';
    default:
      return 'error';
  }
}

function refOf(tx: ClientTransaction): TransactionRef {
  return { method: tx.request.method, branch: topVia(tx.request).params.get('branch') ?? '', callId: getHeaderValues(tx.request, 'call-id')[0] ?? '' };
}

/**
 * Re-open and re-send (SPEC §5.3), on when `sip-enable-tcp-keep-alive` is: when a TCP/TLS
 * connection dies, every client transaction still waiting on it for a final response is
 * re-sent — its last request, unchanged — on a new connection to the same destination
 * (same transport; TLS as a client), opened at once. The destination is the transaction's:
 * the far end's listening address (a registered phone's Contact, not the port it connected
 * from). Transactions whose TU said `reopen: false` fail with a transport error instead;
 * when the new connection cannot be opened, all of them do (code REOPEN_FAILED), and the TU
 * (the call manager) releases the call. A dead connection with no transaction waiting is
 * only reported: the next request opens a new one.
 *
 * What is reported (log lines, the Connection* events and so metrics and /events) goes out
 * once the re-opens in flight are done, in order, each event with the time it describes: when
 * many connections are found dead at once, every re-open starts before any is reported.
 */
export class FlowRecovery {
  readonly events: TypedEvents<FlowRecoveryEvents>;
  private readonly reports: ReportQueue;
  private stopping = false;

  constructor(private readonly deps: FlowRecoveryDeps) {
    this.events = new TypedEvents<FlowRecoveryEvents>((err, name) => deps.log.error({ err, event: name }, 'flow recovery listener failed'));
    this.reports = new ReportQueue({
      clock: deps.clock,
      maxWaitMs: REPORT_MAX_WAIT_MS,
      onError: (err) => deps.log.error({ err }, 'flow recovery report failed'),
      defer: deps.defer,
    });
    deps.transport.events.on('connectionClosed', (e) => this.onClosed(e));
  }

  /** From now on closes are the server's own (shutdown): nothing is re-opened. Reports waiting go out now. */
  stop(): void {
    this.stopping = true;
    this.reports.drain();
  }

  /**
   * Does only what the re-open needs before starting it; everything else (the log line, the
   * ConnectionStale event, the refs in it) is a report that waits until the re-opens in flight
   * are done, since many connections found dead together are closed in one turn of the loop.
   */
  private onClosed(e: TransportEvents['connectionClosed']): void {
    if (this.stopping) return;
    const dead = new DeadConnection(e, this.deps.clock.now(), this.deps.log);
    const active = this.deps.transactions.activeClientTransactionsOnFlow(e.id);
    // One re-open per destination; the transport also joins concurrent opens to one address.
    const byDestination = new Map<string, { dest: Destination & { transport: StreamName }; txs: ClientTransaction[] }>();
    const refuse: ClientTransaction[] = [];
    for (const tx of active) {
      if (!tx.reopen) {
        refuse.push(tx);
        continue;
      }
      const { flowId: _dead, ...dest } = tx.destination;
      const key = `${dest.transport} ${hostPort(dest.address, dest.port)}`;
      const group = byDestination.get(key) ?? { dest: { ...dest, transport: e.transport }, txs: [] };
      group.txs.push(tx);
      byDestination.set(key, group);
    }
    for (const { dest, txs } of byDestination.values()) {
      this.reopen(dead, dest, txs).catch((err: unknown) => dead.log().error({ err }, 're-open failed unexpectedly'));
    }

    this.reports.post(() => {
      // Logged after the re-opens are under way: detectedAt is when it was found dead.
      dead.log().warn({ cause: e.cause, active: active.length, detectedAt: dead.facts.time }, active.length > 0 ? 'connection died with transactions waiting: re-opening' : 'connection died');
      this.events.emit('ConnectionStale', { ...dead.facts, active: active.map(refOf) });
    });
    if (refuse.length === 0) return;
    const reason = 'connection died; no re-open for this destination (voip-service)';
    for (const tx of refuse) tx.failFlow(new TransportError(FLOW_DIED, reason));
    const first = refuse[0]?.destination;
    const destination = first ? hostPort(first.address, first.port) : dead.facts.remote;
    this.reports.post(() => this.events.emit('ConnectionReopenFailed', { ...dead.facts, destination, reason, reopenMs: 0, failed: refuse.map(refOf) }));
  }

  /** Re-opens to dest and re-sends txs there; its reports wait (hold) until it is done. */
  private async reopen(dead: DeadConnection, dest: Destination & { transport: StreamName }, txs: ClientTransaction[]): Promise<void> {
    const done = this.reports.hold();
    try {
      await this.reopenAndResend(dead, dest, txs);
    } finally {
      done();
    }
  }

  private async reopenAndResend(dead: DeadConnection, dest: Destination & { transport: StreamName }, txs: ClientTransaction[]): Promise<void> {
    const started = this.deps.clock.now();
    const destination = hostPort(dest.address, dest.port);
    let connectionId: string;
    try {
      connectionId = (await this.deps.transport.openConnection(dest)).id;
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      const reopenMs = this.deps.clock.now() - started;
      const waiting = txs.filter((tx) => tx.active);
      for (const tx of waiting) tx.failFlow(new TransportError(REOPEN_FAILED, `stale connection could not be re-opened to ${destination}: ${reason}`, { cause: err }));
      this.reports.post(() => {
        dead.log().error({ destination, reason, reopenMs }, 'could not re-open the connection: its transactions fail');
        this.events.emit('ConnectionReopenFailed', { ...dead.facts, destination, reason, reopenMs, failed: waiting.map(refOf) });
      });
      return;
    }
    const resent: ClientTransaction[] = [];
    const failures: { tx: ClientTransaction; err: unknown }[] = [];
    for (const tx of txs) {
      if (!tx.active) continue;
      try {
        await tx.resend({ ...dest, flowId: connectionId });
        resent.push(tx);
      } catch (err) {
        // resend() failed the transaction itself (local 503).
        failures.push({ tx, err });
      }
    }
    const reopenMs = this.deps.clock.now() - started;
    this.reports.post(() => {
      const log = dead.log();
      for (const { tx, err } of failures) log.warn({ err, branch: refOf(tx).branch }, 're-send on the new connection failed');
      log.info({ destination, newConnection: connectionId, reopenMs, resent: resent.length }, 'connection re-opened, requests re-sent');
      this.events.emit('ConnectionReopened', { ...dead.facts, destination, newConnectionId: connectionId, reopenMs, resent: resent.map(refOf) });
    });
  }
}

/** What the reports about one dead connection share; the child logger is made only when one is written. */
class DeadConnection {
  readonly facts: ConnectionFacts;
  private logger: Logger | undefined;

  constructor(
    e: TransportEvents['connectionClosed'],
    time: number,
    private readonly parentLog: Logger,
  ) {
    this.facts = {
      connectionId: e.id,
      transport: e.transport,
      remote: hostPort(e.remoteAddress, e.remotePort),
      detectedBy: detectedBy(e),
      cause: e.cause,
      time,
    };
  }

  log(): Logger {
    const { connectionId, remote, transport, detectedBy: how } = this.facts;
    this.logger ??= this.parentLog.child({ connection: connectionId, remote, transport, detectedBy: how });
    return this.logger;
  }
}
