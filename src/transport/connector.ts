import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect, type SecureContextOptions } from 'node:tls';
import type { Clock } from '../util/clock.js';
import { TransportError } from '../util/errors.js';
import type { StreamTransport } from './flow.js';

export interface ConnectRequest {
  transport: StreamTransport;
  address: string;
  port: number;
  serverName?: string;
  timeoutMs: number;
}

/** Opens a connected (and for TLS, handshaken) socket. Tests may pass another implementation. */
export type Connector = (req: ConnectRequest) => Promise<Socket>;

export interface TlsClientOptions {
  ca?: SecureContextOptions['ca'];
  cert?: SecureContextOptions['cert'];
  key?: SecureContextOptions['key'];
  verifyPeer: boolean;
}

/**
 * The default connector: net/tls connect bounded by `timeoutMs` (sip-tcp-connect-timeout),
 * TLS handshake included. Failures reject with TransportError codes CONNECT_REFUSED,
 * CONNECT_TIMEOUT, TLS_FAILED or CONNECT_FAILED.
 */
export function createConnector(clock: Clock, tls: TlsClientOptions): Connector {
  return (req) =>
    new Promise<Socket>((resolve, reject) => {
      const isIp = /^[\d.]+$|:/.test(req.serverName ?? req.address);
      const socket =
        req.transport === 'TLS'
          ? tlsConnect({
              host: req.address,
              port: req.port,
              servername: isIp ? undefined : (req.serverName ?? req.address),
              ca: tls.ca,
              cert: tls.cert,
              key: tls.key,
              rejectUnauthorized: tls.verifyPeer,
              // Only when not verifying: an explicit `checkServerIdentity: undefined` replaces
              // Node's default and trips an internal assertion in tls.connect.
              ...(tls.verifyPeer ? {} : { checkServerIdentity: () => undefined }),
            })
          : netConnect({ host: req.address, port: req.port });
      const readyEvent = req.transport === 'TLS' ? 'secureConnect' : 'connect';
      const timer = clock.setTimer(req.timeoutMs, () => {
        socket.destroy();
        reject(new TransportError('CONNECT_TIMEOUT', `connect to ${where(req)} timed out after ${req.timeoutMs} ms`));
      });
      const onError = (err: NodeJS.ErrnoException): void => {
        timer.cancel();
        socket.destroy();
        reject(classify(err, req));
      };
      socket.once('error', onError);
      socket.once(readyEvent, () => {
        timer.cancel();
        socket.off('error', onError);
        resolve(socket);
      });
    });
}

function where(req: ConnectRequest): string {
  return `${req.transport} ${req.address}:${req.port}`;
}

function classify(err: NodeJS.ErrnoException, req: ConnectRequest): TransportError {
  if (err.code === 'ECONNREFUSED') return new TransportError('CONNECT_REFUSED', `connect to ${where(req)} refused`, { cause: err });
  if (err.code === 'ETIMEDOUT') return new TransportError('CONNECT_TIMEOUT', `connect to ${where(req)} timed out`, { cause: err });
  if (req.transport === 'TLS' && !err.syscall) {
    return new TransportError('TLS_FAILED', `TLS to ${where(req)} failed: ${err.message}`, { cause: err });
  }
  return new TransportError('CONNECT_FAILED', `connect to ${where(req)} failed: ${err.code ?? err.message}`, { cause: err });
}
