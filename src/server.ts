import { readFileSync } from 'node:fs';
import type { Config } from './config/schema.js';
import { UaCore } from './dialog/ua-core.js';
import { TransactionLayer } from './transaction/transaction-layer.js';
import { TransportLayer } from './transport/transport-layer.js';
import { SystemClock, type Clock } from './util/clock.js';
import { ConfigError } from './util/errors.js';
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
  private readonly log: Logger;

  constructor(deps: SipServerDeps) {
    const t = deps.config.TServer;
    this.log = deps.log;
    this.clock = deps.clock ?? new SystemClock();
    this.transport = new TransportLayer(
      {
        address: t['sip-address'],
        port: t['sip-port'],
        tlsPort: t['sip-port-tls'],
        ...(deps.tls ? { tls: { ...deps.tls, verifyPeer: t['sip-tls-verify-peer'] } } : {}),
        connectTimeoutMs: t['sip-tcp-connect-timeout'],
        maxMessageSize: t['sip-max-message-size'],
        maxConnections: t['sip-max-connections'],
      },
      this.clock,
      this.log.child({ layer: 'transport' }),
    );
    this.ua = new UaCore(this.log.child({ layer: 'ua' }));
    this.transactions = new TransactionLayer({
      clock: this.clock,
      transport: this.transport,
      timers: { T1: t['sip-t1'], T2: t['sip-t2'], T4: t['sip-t4'], inviteTimeout: t['sip-invite-timeout'] * 1000 },
      log: this.log.child({ layer: 'transaction' }),
      onRequest: (tx, req) => this.ua.onRequest(tx, req),
    });
    this.transport.events.on('message', (m) => this.transactions.receive(m));
    this.logTransportEvents();
  }

  async start(): Promise<void> {
    await this.transport.start();
  }

  async stop(): Promise<void> {
    this.transactions.close();
    await this.transport.stop();
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
    ev.on('connectionOpened', (e) => log.debug(e, 'connection opened'));
    ev.on('connectionClosed', (e) => log.debug(e, 'connection closed'));
    ev.on('connectionFailed', (e) => log.warn(e, 'connection failed'));
    ev.on('connectionRefused', (e) => log.warn(e, 'connection refused'));
    ev.on('messageDropped', (e) => log.info({ reason: e.reason, source: `${e.source.transport} ${e.source.address}:${e.source.port}` }, 'message dropped'));
  }
}
