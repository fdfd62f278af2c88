import type { Directory } from '../directory/directory.js';
import type { CallControlView, CallsView, MakeCallView } from './call-routes.js';
import type { Binding } from '../registrar/binding.js';
import type { RegistrarEvents } from '../registrar/registrar-events.js';
import type { TransactionLayer } from '../transaction/transaction-layer.js';
import type { Connection } from '../transport/connection.js';
import type { SourceGuard } from '../transport/source-guard.js';
import type { TransportLayer } from '../transport/transport-layer.js';
import type { Clock } from '../util/clock.js';
import type { Logger } from '../util/logger.js';
import type { TypedEvents } from '../util/typed-events.js';

/**
 * What the control API reads of the registrar: its events and its bindings. The Registrar
 * class satisfies it; tests pass a small stand-in.
 */
export interface RegistrarView {
  events: TypedEvents<RegistrarEvents>;
  bindingsOf(dn: string): Binding[];
  allBindings(): Binding[];
}

/** TCP keep-alive settings of one connection, as GET /connections shows them (SPEC §5). */
export interface KeepAliveInfo {
  enabled: boolean;
  /** Seconds idle before the first probe; absent = the operating system's. */
  idleS?: number;
  /** Seconds between probes; absent = the operating system's. */
  intervalS?: number;
  /** Unanswered probes before the connection is dead; absent = the operating system's. */
  count?: number;
  /** TCP_USER_TIMEOUT in ms; absent or 0 = the operating system's. */
  userTimeoutMs?: number;
}

/**
 * What GET /metrics needs of the metrics module. `Metrics` (src/metrics/metrics.ts) satisfies
 * it; the api layer does not import it (api and metrics are sibling layers).
 */
export interface MetricsView {
  readonly contentType: string;
  text(): Promise<string>;
}

export interface ApiOptions {
  /** `http-address`. */
  address: string;
  /** `http-port`; 0 binds any free port (read ApiServer.port after start). */
  port: number;
  /** `http-token`: when set, every request needs `Authorization: Bearer <token>`. */
  token?: string;
  /** A WebSocket client with more than this many bytes unsent is dropped (default 1 MiB). */
  maxEventBacklogBytes?: number;
  /**
   * How event frames are put off to a later turn (the server: setImmediate), so that what
   * happens in one turn goes out together after it; without it each is sent at once.
   */
  defer?: (fn: () => void) => void;
}

/** Everything the control API reads from, wired by the composition root. */
export interface ApiContext {
  directory: Directory;
  registrar: RegistrarView;
  transport: TransportLayer;
  transactions: TransactionLayer;
  clock: Clock;
  log: Logger;
  metrics: MetricsView;
  /** The calls (GET/DELETE /calls); without it those routes are absent. */
  calls?: CallsView;
  /** MakeCall (POST /calls); without it that route is absent. */
  makeCall?: MakeCallView;
  /** HoldCall, RetrieveCall, SingleStepTransfer (POST /calls/{id}/hold|retrieve|transfer). */
  control?: CallControlView;
  /** Per-source bans (GET /bans, DELETE /bans/{source}); without it the list is empty. */
  guard?: Pick<SourceGuard, 'bans' | 'lift'>;
  /** Keep-alive settings of a connection; without it every connection shows `{ enabled: false }`. */
  keepAliveOf?: (conn: Connection) => KeepAliveInfo;
  options: ApiOptions;
}
