import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';
import { TransportError } from '../util/errors.js';

/**
 * TCP keep-alive on SIP stream sockets (SPEC §5).
 *
 * - Off (the default): nothing is set on any socket.
 * - On, no extension option: `socket.setKeepAlive(true)` with no delay, so TCP_KEEPIDLE,
 *   TCP_KEEPINTVL and TCP_KEEPCNT stay the operating system's (the namespace's sysctls).
 *   Node's `setKeepAlive(true, ms)` would also force the interval to 1 s and the count to 10.
 * - On, with `sip-tcp-keep-alive-idle`: `setKeepAlive(true, idle)`, then TCP_KEEPINTVL and
 *   TCP_KEEPCNT are written back — the configured ones, or the sysctls — so the idle option
 *   changes the idle time only. `-interval`, `-count` and `sip-tcp-user-timeout` are
 *   setsockopt calls of their own.
 *
 * Node has no setsockopt for these, so they go through `ffi-rs` (setsockopt/getsockopt of
 * the C library, on the socket's fd), loaded only when an option needs it or a socket's
 * settings are read back for GET /connections.
 */

export interface KeepAliveSettings {
  enabled: boolean;
  idleS?: number;
  intervalS?: number;
  count?: number;
  /** TCP_USER_TIMEOUT in ms; 0 or absent: the operating system's. */
  userTimeoutMs?: number;
}

/** A socket's keep-alive state as read back from it (getsockopt). */
export interface SocketKeepAlive {
  enabled: boolean;
  idleS?: number;
  intervalS?: number;
  count?: number;
  userTimeoutMs?: number;
}

const SOL_SOCKET = 1;
const SO_KEEPALIVE = 9;
const IPPROTO_TCP = 6;
const TCP_KEEPIDLE = 4;
const TCP_KEEPINTVL = 5;
const TCP_KEEPCNT = 6;
const TCP_USER_TIMEOUT = 18;

interface Ffi {
  get(fd: number, level: number, name: number): number;
  set(fd: number, level: number, name: number, value: number): void;
}

let ffi: Ffi | undefined;

/** setsockopt/getsockopt on ints, through ffi-rs; Linux only (the option numbers above). */
function sockopts(): Ffi {
  if (ffi) return ffi;
  if (process.platform !== 'linux') throw new TransportError('KEEPALIVE_UNSUPPORTED', 'per-socket keep-alive timers need Linux');
  const require = createRequire(import.meta.url);
  // ffi-rs asks process.report.getReport() whether libc is musl as it loads. A report walks
  // every open socket and looks up each endpoint's host name, synchronously, on the event loop
  // (5 s per lookup without a reachable DNS): with thousands of connections open, the first
  // GET /connections froze the whole server for minutes. Network handles are left out of it.
  const report = process.report as { excludeNetwork?: boolean };
  const excluded = report.excludeNetwork;
  report.excludeNetwork = true;
  let lib: typeof import('ffi-rs');
  try {
    lib = require('ffi-rs') as typeof import('ffi-rs');
  } finally {
    report.excludeNetwork = excluded;
  }
  const { DataType } = lib;
  lib.open({ library: 'libc', path: '' });
  const call = (name: 'getsockopt' | 'setsockopt', params: unknown[]): void => {
    const { value, errnoCode } = lib.load({
      library: 'libc',
      funcName: name,
      retType: DataType.I32,
      paramsType: [DataType.I32, DataType.I32, DataType.I32, DataType.External, name === 'getsockopt' ? DataType.External : DataType.I32],
      paramsValue: params,
      errno: true,
    }) as unknown as { value: number; errnoCode: number };
    if (value !== 0) throw new TransportError('SOCKOPT_FAILED', `${name} failed with errno ${errnoCode}`);
  };
  // Every pointer made here is freed once used (they are Rust allocations).
  const free = (ptrs: ReturnType<typeof lib.createPointer>): void =>
    lib.freePointer({ paramsType: ptrs.map(() => DataType.I32), paramsValue: ptrs, pointerType: lib.PointerType.RsPointer });
  ffi = {
    get(fd, level, name) {
      const ptrs = lib.createPointer({ paramsType: [DataType.I32, DataType.I32], paramsValue: [0, 4] });
      try {
        call('getsockopt', [fd, level, name, ptrs[0], ptrs[1]]);
        const [out] = lib.restorePointer({ retType: [DataType.I32], paramsValue: [ptrs[0] as NonNullable<(typeof ptrs)[0]>] });
        return Number(out);
      } finally {
        free(ptrs);
      }
    },
    set(fd, level, name, v) {
      const ptrs = lib.createPointer({ paramsType: [DataType.I32], paramsValue: [v] });
      try {
        call('setsockopt', [fd, level, name, ptrs[0], 4]);
      } finally {
        free(ptrs);
      }
    },
  };
  return ffi;
}

function fdOf(socket: object): number {
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) throw new TransportError('NO_FD', 'the socket has no file descriptor (closed?)');
  return fd;
}

/** This network namespace's keep-alive sysctl, in its unit (s or probes). */
function sysctl(name: 'tcp_keepalive_intvl' | 'tcp_keepalive_probes'): number {
  return Number(readFileSync(`/proc/sys/net/ipv4/${name}`, 'utf8').trim());
}

export class KeepAlive {
  /**
   * The namespace's interval and count, read when first needed and kept: once per process,
   * not twice per connection (those file reads were ~5 % of the CPU while endpoints
   * registered). A change of the sysctls takes a restart to be put back after `-idle`.
   */
  private os: { intervalS: number; count: number } | undefined;

  constructor(readonly settings: KeepAliveSettings) {}

  /** True when an extension option needs setsockopt beyond setKeepAlive(true). */
  get tuned(): boolean {
    const s = this.settings;
    return s.idleS !== undefined || s.intervalS !== undefined || s.count !== undefined || (s.userTimeoutMs ?? 0) > 0;
  }

  /** Applies the settings to a new SIP TCP/TLS socket (accepted or opened). Throws when it cannot. */
  configure(socket: Socket): void {
    const s = this.settings;
    if (!s.enabled) return;
    if (s.idleS === undefined) {
      socket.setKeepAlive(true);
    } else {
      socket.setKeepAlive(true, s.idleS * 1000);
    }
    if (!this.tuned) return;
    const fd = fdOf(socket);
    const os = sockopts();
    // setKeepAlive(true, ms) forced interval 1 s and count 10: put back the ones wanted.
    if (s.idleS !== undefined) this.os ??= { intervalS: sysctl('tcp_keepalive_intvl'), count: sysctl('tcp_keepalive_probes') };
    const interval = s.intervalS ?? this.os?.intervalS;
    const count = s.count ?? this.os?.count;
    if (interval !== undefined) os.set(fd, IPPROTO_TCP, TCP_KEEPINTVL, interval);
    if (count !== undefined) os.set(fd, IPPROTO_TCP, TCP_KEEPCNT, count);
    if ((s.userTimeoutMs ?? 0) > 0) os.set(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, s.userTimeoutMs ?? 0);
  }

  /**
   * As `read`, but never throws: when the options cannot be read (no FFI here), what was
   * asked for (`enabled` only).
   */
  readOrAsked(socket: object): SocketKeepAlive {
    try {
      return this.read(socket);
    } catch {
      return { enabled: this.settings.enabled };
    }
  }

  /** The socket's keep-alive as the kernel has it; `{enabled:false}` for a closed socket. */
  read(socket: object): SocketKeepAlive {
    let fd: number;
    try {
      fd = fdOf(socket);
    } catch {
      return { enabled: false };
    }
    const os = sockopts();
    const enabled = os.get(fd, SOL_SOCKET, SO_KEEPALIVE) !== 0;
    if (!enabled) return { enabled };
    return {
      enabled,
      idleS: os.get(fd, IPPROTO_TCP, TCP_KEEPIDLE),
      intervalS: os.get(fd, IPPROTO_TCP, TCP_KEEPINTVL),
      count: os.get(fd, IPPROTO_TCP, TCP_KEEPCNT),
      userTimeoutMs: os.get(fd, IPPROTO_TCP, TCP_USER_TIMEOUT),
    };
  }
}
