import type { Socket } from 'node:net';
import { createSecureContext, TLSSocket, type SecureContext } from 'node:tls';
import { KeepAlive } from './keep-alive.js';
import type { FromWorker, ToWorker, WorkerSetup } from './worker-protocol.js';

/**
 * A socket worker: a child process of the server that holds accepted TCP/TLS connections
 * (`sip-tcp-workers`), so the server can keep more connections than one process may have
 * open files. It applies keep-alive to each socket, terminates TLS, and relays bytes and
 * socket events to the server over the IPC channel; it never looks inside a message.
 * It exits when the server goes away (the channel closes).
 */

/**
 * With a callback, a send on a channel that is closing (the server stopping) reports its
 * EPIPE there instead of as an 'error' event that would kill the worker mid-shutdown; the
 * worker then goes with the channel ('disconnect' below).
 */
const send = (m: FromWorker): void => {
  if (process.connected) process.send?.(m, undefined, {}, ignoreClosedChannel);
};

function ignoreClosedChannel(err: Error | null): void {
  if (err && (err as NodeJS.ErrnoException).code !== 'EPIPE' && (err as NodeJS.ErrnoException).code !== 'ERR_IPC_CHANNEL_CLOSED') {
    process.stderr.write(`socket worker: sending to the server failed: ${err.message}\n`);
  }
}

let setup: WorkerSetup | undefined;
let keepAlive: KeepAlive | undefined;
/** One TLS context for every connection (made once: a context per connection parses the key each time). */
let secureContext: SecureContext | undefined;
const sockets = new Map<string, Socket>();

const ID = Symbol('connection id');
type Held = Socket & { [ID]: string };

function onData(this: Held, bytes: Buffer): void {
  send({ t: 'data', id: this[ID], bytes });
}
function onEnd(this: Held): void {
  send({ t: 'end', id: this[ID] });
}
function onError(this: Held, err: NodeJS.ErrnoException): void {
  send({ t: 'error', id: this[ID], ...(err.code ? { code: err.code } : {}), message: err.message });
}
function onClose(this: Held): void {
  sockets.delete(this[ID]);
  send({ t: 'close', id: this[ID] });
}

function adopt(id: string, tls: boolean, raw: Socket): void {
  const s = setup;
  if (!s || !keepAlive) {
    raw.destroy();
    send({ t: 'error', id, code: 'WORKER_NOT_READY', message: 'socket worker has no setup yet' });
    send({ t: 'close', id });
    return;
  }
  let socket: Socket = raw;
  raw.setNoDelay(true);
  try {
    keepAlive.configure(raw);
  } catch (err) {
    // As in the server process: the connection is kept and the failure logged there.
    send({ t: 'keepAliveFailed', id, message: (err as Error).message });
  }
  // Read back before a TLS wrap takes the socket over.
  const readBack = keepAlive.readOrAsked(raw);
  if (tls) {
    if (!s.tls) throw new Error('a TLS socket was handed over but the worker has no certificate');
    secureContext ??= createSecureContext({ cert: s.tls.cert, key: s.tls.key, ...(s.tls.ca ? { ca: s.tls.ca } : {}) });
    socket = new TLSSocket(raw, { isServer: true, secureContext });
  }
  sockets.set(id, socket);
  // Shared listeners (`this` is the socket) rather than four closures per connection.
  (socket as Held)[ID] = id;
  socket.on('data', onData);
  socket.on('end', onEnd);
  socket.on('error', onError);
  socket.on('close', onClose);
  send({ t: 'adopted', id, keepAlive: readBack });
  raw.resume();
}

process.on('message', (m: ToWorker, handle?: Socket) => {
  switch (m.t) {
    case 'setup':
      setup = m;
      keepAlive = new KeepAlive(m.keepAlive);
      send({ t: 'ready' });
      return;
    case 'adopt':
      if (handle) adopt(m.id, m.tls, handle);
      return;
    case 'write': {
      const socket = sockets.get(m.id);
      if (!socket || socket.destroyed) {
        send({ t: 'written', id: m.id, n: m.n, error: 'connection is closed' });
        return;
      }
      const bytes = typeof m.bytes === 'string' ? m.bytes : Buffer.from(m.bytes.buffer, m.bytes.byteOffset, m.bytes.byteLength);
      // n = 0: nobody waits for this write (a keep-alive pong).
      if (m.n === 0) socket.write(bytes);
      else socket.write(bytes, (err) => send({ t: 'written', id: m.id, n: m.n, ...(err ? { error: err.message } : {}) }));
      return;
    }
    case 'end':
      sockets.get(m.id)?.end();
      return;
    case 'destroy':
      sockets.get(m.id)?.destroy();
      return;
  }
});

// The server is gone (or stopping): so are its connections.
process.on('disconnect', () => {
  for (const s of sockets.values()) s.destroy();
  process.exit(0);
});

// A Ctrl-C reaches the whole process group, workers included: a worker that died of it would
// take its connections down while the server is still sending the BYEs of its shutdown. The
// server decides when to stop; the worker goes when the channel closes (above).
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => undefined);
