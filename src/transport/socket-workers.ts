import { fork, type ChildProcess } from 'node:child_process';
import type { Socket } from 'node:net';
import { TransportError } from '../util/errors.js';
import { openFileLimit, WORKER_RESERVED_FILES } from '../util/open-files.js';
import type { Logger } from '../util/logger.js';
import { stripV4Mapped } from './connection.js';
import type { KeepAliveSettings } from './keep-alive.js';
import { RemoteSocket, type WorkerLink } from './remote-socket.js';
import type { SocketKeepAlive } from './keep-alive.js';
import type { FromWorker, ToWorker } from './worker-protocol.js';

export interface SocketWorkersOptions {
  count: number;
  keepAlive: KeepAliveSettings;
  tls?: { cert: Buffer; key: Buffer; ca?: Buffer };
  /** Most sockets one worker may hold; default: its open-file limit less a reserve. */
  perWorkerLimit?: number;
}

interface Worker {
  index: number;
  proc: ChildProcess;
  sockets: Map<string, RemoteSocket>;
  /** Write callbacks waiting for the worker's report, by write number (n > 0). */
  writes: Map<number, { id: string; callback: (err?: Error | null) => void }>;
  nextWrite: number;
  link: WorkerLink;
  ready: Promise<void>;
}


/**
 * The socket workers (`sip-tcp-workers`): child processes that hold accepted TCP/TLS
 * connections for the server, so it can hold more connections than one process may have
 * open files. An accepted socket is handed over (its file descriptor moves to the worker) to
 * the worker holding the fewest; the server keeps a RemoteSocket for it, and everything
 * above the socket — framing, parsing, transactions, keep-alive failure handling — is the
 * same as for a socket the server holds itself. A worker that dies takes its connections
 * with it (each is reported closed) and is started again.
 */
export class SocketWorkers {
  private readonly workers: Worker[] = [];
  /** Keep-alive read-backs are nearly always alike: one object for each distinct one. */
  private readonly keepAliveShapes = new Map<string, SocketKeepAlive>();
  private stopping = false;
  readonly perWorkerLimit: number;

  constructor(
    private readonly opts: SocketWorkersOptions,
    private readonly log: Logger,
  ) {
    this.perWorkerLimit = opts.perWorkerLimit ?? Math.max(1, (openFileLimit() ?? 1024) - WORKER_RESERVED_FILES);
  }

  async start(): Promise<void> {
    for (let i = 0; i < this.opts.count; i++) this.workers.push(this.spawn(i));
    await Promise.all(this.workers.map((w) => w.ready));
    this.log.info({ workers: this.opts.count, perWorkerLimit: this.perWorkerLimit }, 'socket workers up');
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(
      this.workers.map(
        (w) =>
          new Promise<void>((resolve) => {
            if (w.proc.exitCode !== null || w.proc.signalCode !== null) return resolve();
            w.proc.once('exit', () => resolve());
            w.proc.disconnect();
          }),
      ),
    );
  }

  /** How many connections all workers can still take. */
  get spare(): number {
    return this.workers.reduce((n, w) => n + Math.max(0, this.perWorkerLimit - w.sockets.size), 0);
  }

  /**
   * Hands an accepted socket (paused, nothing read yet) to the least-loaded worker. Returns
   * its stand-in, or throws NO_WORKER_CAPACITY when every worker is full.
   */
  adopt(socket: Socket, id: string, tls: boolean): RemoteSocket {
    let best: Worker | undefined;
    for (const w of this.workers) {
      if (w.proc.connected && w.sockets.size < this.perWorkerLimit && (!best || w.sockets.size < best.sockets.size)) best = w;
    }
    if (!best) throw new TransportError('NO_WORKER_CAPACITY', 'every socket worker holds as many connections as it may');
    const worker = best;
    const remote = this.standIn(worker, id, {
      remoteAddress: stripV4Mapped(socket.remoteAddress ?? ''),
      remotePort: socket.remotePort ?? 0,
      localAddress: stripV4Mapped(socket.localAddress ?? ''),
      localPort: socket.localPort ?? 0,
    });
    worker.proc.send({ t: 'adopt', id, tls } satisfies ToWorker, socket, { keepOpen: false }, (err) => {
      if (!err) return;
      this.log.warn({ err, id }, 'could not hand a connection to a socket worker');
      socket.destroy();
      worker.sockets.delete(id);
      remote.failed(Object.assign(new Error(err.message), { code: 'HANDOVER_FAILED' }));
      this.closed(worker, remote);
    });
    return remote;
  }

  /**
   * The RemoteSocket, made in a scope of its own: a closure it keeps must not share a V8
   * context with one that names the handed-over socket, or that socket is kept alive with it.
   */
  private standIn(worker: Worker, id: string, peer: ConstructorParameters<typeof RemoteSocket>[1]): RemoteSocket {
    const remote = new RemoteSocket(id, peer, worker.link);
    worker.sockets.set(id, remote);
    return remote;
  }

  /** A socket is gone: its writes still waiting fail, then it reports closed. */
  private closed(worker: Worker, remote: RemoteSocket): void {
    for (const [n, w] of worker.writes) {
      if (w.id !== remote.id) continue;
      worker.writes.delete(n);
      w.callback(new Error('socket closed'));
    }
    remote.closedByWorker();
  }

  private post(worker: Worker, m: ToWorker): void {
    if (!worker.proc.connected) return;
    worker.proc.send(m, (err: Error | null) => {
      if (err) this.log.debug({ err, worker: worker.index }, 'socket worker message not delivered');
    });
  }

  private spawn(index: number): Worker {
    // A worker allocates little but often (a message per read): a 1 MiB young generation
    // instead of V8's default 16 MiB semi-spaces keeps ~4 KB per connection from being
    // touched (measured: worker PSS +3.7 KB instead of +8 KB per connection).
    const execArgv = [...process.execArgv, '--max-semi-space-size=1'];
    const proc = fork(new URL('./socket-worker.js', import.meta.url), [], { execArgv, serialization: 'advanced', stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    const sockets = new Map<string, RemoteSocket>();
    const ready = new Promise<void>((resolve, reject) => {
      const onExit = (code: number | null): void => reject(new TransportError('WORKER_FAILED', `socket worker ${index} exited with ${code} before it was ready`));
      proc.once('exit', onExit);
      proc.on('message', (m: FromWorker) => {
        if (m.t === 'ready') {
          proc.off('exit', onExit);
          resolve();
        }
      });
    });
    const worker: Worker = {
      index,
      proc,
      sockets,
      writes: new Map(),
      nextWrite: 1,
      ready,
      link: {
        post: (m) => this.post(worker, m),
        expectWrite: (id, callback) => {
          const n = worker.nextWrite++;
          worker.writes.set(n, { id, callback });
          return n;
        },
      },
    };
    proc.on('message', (m: FromWorker) => this.onMessage(worker, m));
    proc.on('exit', (code, signal) => this.onExit(worker, code, signal));
    proc.on('error', (err) => this.log.error({ err, worker: index }, 'socket worker error'));
    const setup: ToWorker = { t: 'setup', keepAlive: this.opts.keepAlive, ...(this.opts.tls ? { tls: this.opts.tls } : {}) };
    proc.send(setup);
    return worker;
  }

  private onMessage(worker: Worker, m: FromWorker): void {
    if (m.t === 'ready') return;
    const remote = worker.sockets.get(m.id);
    if (!remote) return;
    switch (m.t) {
      case 'adopted': {
        const key = JSON.stringify(m.keepAlive);
        let shape = this.keepAliveShapes.get(key);
        if (!shape) this.keepAliveShapes.set(key, (shape = m.keepAlive));
        remote.keepAliveReadBack = shape;
        return;
      }
      case 'keepAliveFailed':
        this.log.error({ err: { message: m.message }, id: m.id, worker: worker.index }, 'could not set TCP keep-alive on a connection');
        return;
      case 'data':
        remote.received(Buffer.from(m.bytes.buffer, m.bytes.byteOffset, m.bytes.byteLength));
        return;
      case 'written': {
        const w = worker.writes.get(m.n);
        worker.writes.delete(m.n);
        w?.callback(m.error ? new Error(m.error) : null);
        return;
      }
      case 'end':
        remote.endedByPeer();
        return;
      case 'error':
        remote.failed(Object.assign(new Error(m.message), m.code ? { code: m.code } : {}));
        return;
      case 'close':
        worker.sockets.delete(m.id);
        this.closed(worker, remote);
        return;
    }
  }

  private onExit(worker: Worker, code: number | null, signal: NodeJS.Signals | null): void {
    const lost = [...worker.sockets.values()];
    worker.sockets.clear();
    const writes = [...worker.writes.values()];
    worker.writes.clear();
    for (const w of writes) w.callback(new Error('socket worker exited'));
    for (const remote of lost) {
      remote.failed(Object.assign(new Error('socket worker exited'), { code: 'WORKER_EXITED' }));
      remote.closedByWorker();
    }
    if (this.stopping) return;
    this.log.error({ worker: worker.index, code, signal, connections: lost.length }, 'socket worker exited; starting it again');
    const again = this.spawn(worker.index);
    this.workers[this.workers.indexOf(worker)] = again;
    again.ready.catch((err: unknown) => this.log.error({ err, worker: worker.index }, 'socket worker did not start again'));
  }
}
