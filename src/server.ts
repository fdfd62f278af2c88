import { randomBytes } from 'node:crypto';
import { ApiServer } from './api/api-server.js';
import { CallManager } from './calls/call-manager.js';
import { CallControl } from './calls/call-control.js';
import { CallerAdmission } from './calls/caller-admission.js';
import { CallerIdentifier } from './calls/caller-identity.js';
import { InDialogRelay } from './calls/in-dialog-relay.js';
import { MakeCall } from './calls/make-call.js';
import { PhoneTransfer } from './calls/phone-transfer.js';
import { Router } from './calls/routing.js';
import { HepExporter } from './capture/hep-exporter.js';
import { ThreadedHepSender } from './capture/hep-thread.js';
import { callMetrics } from './metrics/call-metrics.js';
import { flowMetrics } from './metrics/flow-metrics.js';
import { guardMetrics } from './metrics/guard-metrics.js';
import { hepMetrics } from './metrics/hep-metrics.js';
import { Metrics } from './metrics/metrics.js';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import type { Config } from './config/schema.js';
import { UaCore } from './dialog/ua-core.js';
import { Directory } from './directory/directory.js';
import { OosChecker } from './directory/oos-check.js';
import { TrustedSources } from './directory/trusted-sources.js';
import { DigestAuth } from './registrar/digest-auth.js';
import { Registrar } from './registrar/registrar.js';
import { openStore, type ServerStore } from './registrar/store.js';
import { NonceManager } from './sip/digest.js';
import { aorUri } from './sip/uri.js';
import { FlowRecovery } from './transaction/flow-recovery.js';
import { TransactionLayer } from './transaction/transaction-layer.js';
import { KeepAlive } from './transport/keep-alive.js';
import { SocketWorkers } from './transport/socket-workers.js';
import { SourceGuard } from './transport/source-guard.js';
import { TransportLayer } from './transport/transport-layer.js';
import type { TransportName } from './transport/types.js';
import { SystemClock, type Clock } from './util/clock.js';
import { ConfigError } from './util/errors.js';
import { connectionCapacity, openFileLimit } from './util/open-files.js';
import type { Logger } from './util/logger.js';

export interface TlsFiles {
  cert: Buffer;
  key: Buffer;
  ca?: Buffer;
}

export interface SipServerDeps {
  config: Config;
  log: Logger;
  clock?: Clock;
  tls?: TlsFiles | undefined;
}

/**
 * The composition root: builds every layer from the configuration and wires them by
 * constructors. Nothing else creates a layer; there are no module-level singletons.
 */
export class SipServer {
  readonly clock: Clock;
  readonly transport: TransportLayer;
  readonly transactions: TransactionLayer;
  readonly ua: UaCore;
  readonly directory: Directory;
  readonly registrar: Registrar;
  readonly oos: OosChecker;
  readonly store: ServerStore;
  /** Blind transfers started by phones (REFER), carried out by the server. */
  private readonly phoneTransfers: PhoneTransfer;
  /** Per-source limits and bans (sip-source-max-*, sip-ban-time, sip-drop-user-agents). */
  readonly guard: SourceGuard;
  /** Sources that need no credentials: sip-trusted-peers and the trunk / voip-service contacts. */
  readonly trusted: TrustedSources;
  readonly calls: CallManager;
  readonly metrics: Metrics;
  /** Re-open and re-send on dead connections; only with sip-enable-tcp-keep-alive. */
  readonly recovery: FlowRecovery | undefined;
  readonly keepAlive: KeepAlive;
  /** HEPv3 copies of every SIP message in and out; undefined unless hep-address is set. */
  readonly hep: HepExporter | undefined;
  /** The control API; undefined when http-port is 0. */
  readonly api: ApiServer | undefined;
  private readonly log: Logger;
  private readonly options: Config['TServer'];

  constructor(deps: SipServerDeps) {
    const t = deps.config.TServer;
    this.options = t;
    this.log = deps.log;
    this.clock = deps.clock ?? new SystemClock();
    this.keepAlive = new KeepAlive({
      enabled: t['sip-enable-tcp-keep-alive'],
      ...(t['sip-tcp-keep-alive-idle'] !== undefined ? { idleS: t['sip-tcp-keep-alive-idle'] } : {}),
      ...(t['sip-tcp-keep-alive-interval'] !== undefined ? { intervalS: t['sip-tcp-keep-alive-interval'] } : {}),
      ...(t['sip-tcp-keep-alive-count'] !== undefined ? { count: t['sip-tcp-keep-alive-count'] } : {}),
      userTimeoutMs: t['sip-tcp-user-timeout'],
    });
    const transportLog = this.log.child({ layer: 'transport' });
    // The trusted set needs the directory (trunk contacts); the guard asks it lazily, after construction.
    this.guard = new SourceGuard(
      {
        maxMessagesPerSecond: t['sip-source-max-rate'],
        maxAuthFailures: t['sip-source-max-auth-failures'],
        authWindowMs: 60_000,
        maxConnections: t['sip-source-max-connections'],
        maxPendingBytes: t['sip-source-max-pending-bytes'],
        banMs: t['sip-ban-time'] * 1000,
        dropUserAgents: t['sip-drop-user-agents'].map((s) => s.toLowerCase()),
      },
      this.clock,
      (address) => this.trusted.has(address),
      (err, event) => this.log.error({ err, event }, 'source guard listener failed'),
    );
    const files = openFileLimit();
    const maxConnections = connectionCapacity(t['sip-max-connections'], t['sip-tcp-workers'], files);
    if (maxConnections < t['sip-max-connections']) {
      this.log.warn(
        { configured: t['sip-max-connections'], openFiles: files, workers: t['sip-tcp-workers'], using: maxConnections },
        'sip-max-connections is more than the open-file limit lets the server hold: accepting at most this many (raise ulimit -n or sip-tcp-workers)',
      );
    }
    const workers =
      t['sip-tcp-workers'] > 0
        ? new SocketWorkers({ count: t['sip-tcp-workers'], keepAlive: this.keepAlive.settings, ...(deps.tls ? { tls: deps.tls } : {}) }, transportLog)
        : undefined;
    this.transport = new TransportLayer(
      {
        configureSocket: (socket) => {
          try {
            this.keepAlive.configure(socket);
          } catch (err) {
            transportLog.error({ err }, 'could not set TCP keep-alive on a connection');
          }
        },
        address: t['sip-address'],
        port: t['sip-port'],
        tlsPort: t['sip-port-tls'],
        ...(deps.tls ? { tls: { ...deps.tls, verifyPeer: t['sip-tls-verify-peer'] } } : {}),
        connectTimeoutMs: t['sip-tcp-connect-timeout'],
        maxMessageSize: t['sip-max-message-size'],
        maxConnections,
        ...(workers ? { workers } : {}),
        guard: this.guard,
        firstMessageTimeoutMs: t['sip-tcp-first-message-timeout'] * 1000,
        stalledMessageTimeoutMs: t['sip-tcp-stalled-message-timeout'] * 1000,
      },
      this.clock,
      this.log.child({ layer: 'transport' }),
    );
    this.ua = new UaCore(this.log.child({ layer: 'ua' }));
    this.recovery = t['sip-enable-tcp-keep-alive'] ? new FlowRecovery({ transport: this.transport, clock: this.clock, log: this.log.child({ layer: 'flows' }) }) : undefined;
    this.transactions = new TransactionLayer({
      clock: this.clock,
      transport: this.transport,
      ...(this.recovery ? { recovery: this.recovery } : {}),
      timers: { T1: t['sip-t1'], T2: t['sip-t2'], T4: t['sip-t4'], inviteTimeout: t['sip-invite-timeout'] * 1000 },
      log: this.log.child({ layer: 'transaction' }),
      onRequest: (tx, req) => this.ua.onRequest(tx, req),
      onCancel: (cancelTx, inviteTx) => this.calls.onCancel(cancelTx, inviteTx),
      onAck: (ack) => this.calls.onAck(ack),
    });
    this.transport.events.on('message', (m) => this.transactions.receive(m));
    const hepAddress = t['hep-address'];
    if (hepAddress) {
      // The packets are sent from a thread of their own: SIP's thread only encodes them.
      const hepLog = this.log.child({ layer: 'hep' });
      const collector = { address: hepAddress, port: t['hep-port'] };
      const sender = new ThreadedHepSender(collector, { clock: this.clock, log: hepLog, defer: (fn) => setImmediate(fn) });
      this.hep = new HepExporter({ ...collector, captureId: t['hep-capture-id'], password: t['hep-password'] }, { wire: this.transport.wire, clock: this.clock, log: hepLog, sender });
    } else {
      this.hep = undefined;
    }
    this.logTransportEvents();

    this.directory = new Directory(deps.config.dns, this.clock, this.log.child({ layer: 'directory' }));
    this.trusted = new TrustedSources(t['sip-trusted-peers'], this.directory);
    const storeLog = this.log.child({ layer: 'store' });
    this.store = openStore(t.store, {
      onWriteError: (err) => storeLog.error({ err }, 'could not write call records'),
      callRecordWindow: { clock: this.clock, ms: 100 },
      shared: { instance: t['instance-name'] ?? `${hostname()}:${t['sip-port']}`, log: storeLog, clock: this.clock },
    });
    const nonces = new NonceManager({ secret: randomBytes(32), now: () => this.clock.now(), random: randomBytes, lifetimeMs: 300_000 });
    // One digest realm and nonce store for REGISTER (401) and INVITE (407).
    const auth = new DigestAuth(t['sip-address'], nonces, t['sip-auth-algorithms']);
    const access = { trusted: (address: string) => this.trusted.has(address), authFailed: (address: string) => this.guard.authFailed(address) };
    this.registrar = new Registrar(
      this.directory,
      this.store,
      auth,
      this.clock,
      this.log.child({ layer: 'registrar' }),
      // Group commit: the REGISTERs of one event-loop turn are written in one commit, then answered.
      {
        defaultExpiresS: t['registrar-default-expires'],
        minExpiresS: t['registrar-min-expires'],
        flowTimerS: t['registrar-flow-timer'],
        defer: (commit) => setImmediate(commit),
      },
      access,
    );
    this.ua.handle('REGISTER', (tx, req) => this.registrar.handleRegister(tx, req));
    this.oos = new OosChecker({
      directory: this.directory,
      transactions: this.transactions,
      clock: this.clock,
      log: this.log.child({ layer: 'oos' }),
      localAddress: t['sip-address'],
      targetOf: (dn) => this.registrar.targetOf(dn),
      recoveryMs: t['sip-oos-recovery-interval'] * 1000,
    });

    const timers = { t1: t['sip-t1'], t2: t['sip-t2'] };
    const router = new Router(this.directory, this.registrar);
    const admission = new CallerAdmission({
      directory: this.directory,
      identifier: new CallerIdentifier(this.directory, this.registrar),
      access,
      auth,
    });
    this.calls = new CallManager({
      transactions: this.transactions,
      router,
      directory: this.directory,
      records: this.store,
      clock: this.clock,
      log: this.log.child({ layer: 'calls' }),
      timers,
      contactFor: (user, transport) => this.contactFor(user, transport),
      aorFor: (user) => aorUri(user, t['sip-address']),
      admit: (req, source) => admission.admit(req, source),
    });
    const makeCall = new MakeCall({
      calls: this.calls,
      t1: t['sip-t1'],
      transactions: this.transactions,
      router,
      clock: this.clock,
      log: this.log.child({ layer: 'calls' }),
      contactFor: (user, transport) => this.contactFor(user, transport),
      aorFor: (user) => aorUri(user, t['sip-address']),
    });
    const control = new CallControl({
      calls: this.calls,
      router,
      clock: this.clock,
      log: this.log.child({ layer: 'calls' }),
      contactFor: (user, transport) => this.contactFor(user, transport),
    });
    const phoneTransfers = (this.phoneTransfers = new PhoneTransfer({ calls: this.calls, router, clock: this.clock, log: this.log.child({ layer: 'calls' }) }));
    const relay = new InDialogRelay(this.calls, control, phoneTransfers, this.log.child({ layer: 'calls' }));
    this.ua.handle('INVITE', (tx, req) => this.calls.onInvite(tx, req));
    this.ua.handleInDialog((tx, req) => relay.onRequest(tx, req), ['BYE', 'INVITE', 'UPDATE', 'INFO', 'OPTIONS', 'NOTIFY', 'REFER']);

    this.metrics = new Metrics();
    this.metrics.attach({ directory: this.directory, registrar: this.registrar, transport: this.transport, transactions: this.transactions });
    callMetrics(this.metrics, this.calls);
    if (this.recovery) flowMetrics(this.metrics, this.recovery);
    guardMetrics(this.metrics, this.guard);
    if (this.hep) hepMetrics(this.metrics, this.hep);
    this.api =
      t['http-port'] > 0
        ? new ApiServer({
            directory: this.directory,
            registrar: this.registrar,
            transport: this.transport,
            transactions: this.transactions,
            clock: this.clock,
            log: this.log.child({ layer: 'api' }),
            metrics: this.metrics,
            calls: this.calls,
            makeCall,
            control,
            guard: this.guard,
            keepAliveOf: (conn) => conn.socket.keepAliveReadBack ?? this.keepAlive.readOrAsked(conn.socket),
            options: { address: t['http-address'], port: t['http-port'], ...(t['http-token'] ? { token: t['http-token'] } : {}), defer: (fn) => setImmediate(fn) },
          })
        : undefined;
    this.api?.events.forward(this.calls.events, ['EventDialing', 'EventRinging', 'EventEstablished', 'EventHeld', 'EventRetrieved', 'EventReleased']);
    if (this.recovery) this.api?.events.forward(this.recovery.events, ['ConnectionStale', 'ConnectionReopened', 'ConnectionReopenFailed']);
    this.api?.events.forward(this.guard.events, ['EventSourceBanned', 'EventSourceUnbanned']);
    this.guard.events.on('EventSourceBanned', (e) => this.log.warn({ source: e.source, reason: e.reason, until: new Date(e.until).toISOString() }, 'source banned'));
  }

  /** Client transactions still waiting for a final response (not those only absorbing retransmissions). */
  private clientTransactionsActive(): number {
    const { byState } = this.transactions.stats();
    const invite = byState['invite-client'];
    const other = byState['non-invite-client'];
    return (invite.Calling ?? 0) + (invite.Proceeding ?? 0) + (other.Trying ?? 0) + (other.Proceeding ?? 0);
  }

  /** The server's own SIP URI for `user` on `transport`, as written in Contact and From. */
  private contactFor(user: string, transport: TransportName): string {
    const ports = this.transport.boundPorts();
    const port = transport === 'TLS' ? ports.tls : transport === 'TCP' ? ports.tcp : ports.udp;
    const host = this.options['sip-address'].includes(':') ? `[${this.options['sip-address']}]` : this.options['sip-address'];
    return `sip:${encodeURIComponent(user)}@${host}:${port};transport=${transport.toLowerCase()}`;
  }

  /** Loads registrations, opens the SIP listeners, then the control API (so /health means SIP is up). */
  async start(): Promise<void> {
    await this.store.open?.();
    await this.registrar.start();
    this.guard.start();
    // Before the listeners: the first message in is exported too.
    await this.hep?.start();
    await this.transport.start();
    this.oos.start();
    await this.api?.start();
  }

  /**
   * Stops taking calls, releases the calls in progress (BYE/CANCEL with a Reason) and gives
   * those requests up to `graceMs` to be answered, then ends every transaction and timer and
   * closes the store.
   */
  async stop(graceMs = 2000): Promise<void> {
    this.calls.shutdown();
    this.phoneTransfers.stop();
    this.recovery?.stop();
    const deadline = this.clock.now() + graceMs;
    while (this.clientTransactionsActive() > 0 && this.clock.now() < deadline) {
      await new Promise<void>((r) => this.clock.setTimer(20, r));
    }
    await this.api?.stop();
    this.oos.stop();
    this.registrar.stop();
    this.transactions.close();
    await this.transport.stop();
    await this.hep?.stop();
    this.guard.stop();
    await this.store.close();
  }

  /** Reads the TLS files named in the config; a file that cannot be read is a ConfigError. */
  static readTlsFiles(config: Config, source: string): TlsFiles | undefined {
    const t = config.TServer;
    const read = (option: 'sip-tls-cert' | 'sip-tls-key' | 'sip-tls-ca', problems: string[]): Buffer | undefined => {
      const path = t[option];
      if (path === undefined) return undefined;
      try {
        return readFileSync(path);
      } catch (err) {
        problems.push(`${source}: TServer.${option}: cannot read "${path}": ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
        return undefined;
      }
    };
    const problems: string[] = [];
    const cert = read('sip-tls-cert', problems);
    const key = read('sip-tls-key', problems);
    const ca = read('sip-tls-ca', problems);
    if (problems.length > 0) throw new ConfigError(problems);
    if (!cert || !key) return undefined;
    return { cert, key, ...(ca ? { ca } : {}) };
  }

  private logTransportEvents(): void {
    const ev = this.transport.events;
    const log = this.log.child({ layer: 'transport' });
    ev.on('connectionOpened', ({ flow: _flow, ...e }) => log.debug(e, 'connection opened'));
    ev.on('connectionClosed', ({ flow: _flow, ...e }) => log.debug(e, 'connection closed'));
    ev.on('connectionFailed', (e) => log.warn(e, 'connection failed'));
    ev.on('connectionRefused', (e) => log.warn(e, 'connection refused'));
    ev.on('messageDropped', (e) => log.info({ reason: e.reason, source: `${e.source.transport} ${e.source.address}:${e.source.port}` }, 'message dropped'));
  }
}
