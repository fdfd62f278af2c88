import type { Clock, TimerHandle } from '../util/clock.js';
import { TypedEvents } from '../util/typed-events.js';

/** Per-source limits (pike-style); 0 turns a limit off. */
export interface SourceLimits {
  /** Messages a source may send in one second. */
  maxMessagesPerSecond: number;
  /** Failed authentications (wrong credentials) a source may have in `authWindowMs`. */
  maxAuthFailures: number;
  authWindowMs: number;
  /** TCP/TLS connections a source may hold open at once. */
  maxConnections: number;
  /** Bytes a source may hold in incomplete messages over all its connections. */
  maxPendingBytes: number;
  /** How long a source stays banned. */
  banMs: number;
  /** Requests whose User-Agent contains one of these (lower case) are dropped and their source banned. */
  dropUserAgents: readonly string[];
}

export type BanReason = 'message-rate' | 'auth-failures' | 'connections' | 'pending-bytes' | 'scanner';

export interface Ban {
  source: string;
  reason: BanReason;
  since: number;
  until: number;
  /** Messages, connections or requests dropped since the ban began. */
  dropped: number;
}

export interface SourceGuardEvents extends Record<string, unknown> {
  EventSourceBanned: { source: string; reason: BanReason; until: number; time: number };
  EventSourceUnbanned: { source: string; reason: BanReason; lifted: boolean; time: number };
}

/** Per-source counters; a source only appears while it sends. */
interface Counters {
  windowStart: number;
  messages: number;
  authFailures: number[];
  connections: number;
  pendingBytes: number;
}

/** A flood of spoofed sources must not grow the table without bound: past this many, the oldest window is forgotten. */
const MAX_TRACKED = 100_000;
/** At most this many bans are held (a spoofed-source flood could otherwise grow the table without end). */
const MAX_BANS = 10_000;

/**
 * Per-source limits with bans, as Kamailio's pike does: a source over its message rate, with
 * too many failed authentications, too many connections, or a scanner's User-Agent is banned
 * for `banMs` — its datagrams and stream messages are dropped unread, its connections refused.
 * Exempt sources (trusted peers, trunks) are never counted or banned. Bans are listed and can
 * be lifted (the control API's /bans); each ban and unban is an event.
 */
export class SourceGuard {
  readonly events: TypedEvents<SourceGuardEvents>;
  private readonly counters = new Map<string, Counters>();
  private readonly banned = new Map<string, Ban>();
  private sweeper: TimerHandle | undefined;
  /** Requests dropped for a scanner's User-Agent (banned or not). */
  scannerRequestsDropped = 0;

  constructor(
    private readonly limits: SourceLimits,
    private readonly clock: Clock,
    private readonly exempt: (address: string) => boolean,
    onListenerError: (err: unknown, event: keyof SourceGuardEvents) => void = () => undefined,
  ) {
    this.events = new TypedEvents<SourceGuardEvents>(onListenerError);
  }

  /** Starts forgetting idle sources every few seconds (counters are only kept for sources that send). */
  start(): void {
    this.sweeper = this.clock.setTimer(5000, () => {
      this.sweep();
      this.start();
    });
  }

  stop(): void {
    this.sweeper?.cancel();
    this.sweeper = undefined;
  }

  /** A message (datagram or framed stream message) from `address`: false when it must be dropped. */
  message(address: string): boolean {
    if (this.isBanned(address)) return false;
    const max = this.limits.maxMessagesPerSecond;
    if (max <= 0 || this.exempt(address)) return true;
    const c = this.countersOf(address);
    const now = this.clock.now();
    if (now - c.windowStart >= 1000) {
      c.windowStart = now;
      c.messages = 0;
    }
    if (++c.messages > max) {
      this.ban(address, 'message-rate');
      return false;
    }
    return true;
  }

  /**
   * A request's User-Agent: false when it is a known scanner's. Over a stream (`verified`: the
   * address took part in a TCP handshake) its source is banned too; a datagram's source address
   * could be forged, and one forged datagram must not ban somebody else.
   */
  userAgent(address: string, userAgent: string | undefined, verified: boolean): boolean {
    if (userAgent === undefined || this.limits.dropUserAgents.length === 0) return true;
    const ua = userAgent.toLowerCase();
    if (!this.limits.dropUserAgents.some((s) => ua.includes(s)) || this.exempt(address)) return true;
    this.scannerRequestsDropped++;
    if (verified) this.ban(address, 'scanner');
    return false;
  }

  /** A request from `address` whose credentials were wrong. */
  authFailed(address: string): void {
    const max = this.limits.maxAuthFailures;
    if (max <= 0 || this.exempt(address)) return;
    const now = this.clock.now();
    const c = this.countersOf(address);
    c.authFailures = c.authFailures.filter((t) => now - t < this.limits.authWindowMs);
    c.authFailures.push(now);
    if (c.authFailures.length >= max) this.ban(address, 'auth-failures');
  }

  /** A connection accepted from `address`: false when it must be refused. */
  connectionOpened(address: string): boolean {
    if (this.isBanned(address)) return false;
    if (this.exempt(address)) return true;
    const c = this.countersOf(address);
    c.connections++;
    const max = this.limits.maxConnections;
    if (max > 0 && c.connections > max) {
      c.connections--;
      this.ban(address, 'connections');
      return false;
    }
    return true;
  }

  /**
   * A connection of `address` holds `delta` more (or fewer) bytes of incomplete messages:
   * false when the source is now over its limit (the connection must go; the source is banned).
   */
  pending(address: string, delta: number): boolean {
    if (this.exempt(address)) return true;
    const c = delta > 0 ? this.countersOf(address) : this.counters.get(address);
    if (!c) return true;
    c.pendingBytes = Math.max(0, c.pendingBytes + delta);
    const max = this.limits.maxPendingBytes;
    if (max > 0 && delta > 0 && c.pendingBytes > max) {
      this.ban(address, 'pending-bytes');
      return false;
    }
    return true;
  }

  /** An accepted connection from `address` closed (one counted by connectionOpened). */
  connectionClosed(address: string): void {
    const c = this.counters.get(address);
    if (c && c.connections > 0) c.connections--;
  }

  isBanned(address: string): boolean {
    const ban = this.banned.get(address);
    if (!ban) return false;
    if (this.clock.now() < ban.until) {
      ban.dropped++;
      return true;
    }
    this.banned.delete(address);
    this.events.emit('EventSourceUnbanned', { source: address, reason: ban.reason, lifted: false, time: this.clock.now() });
    return false;
  }

  bans(): Ban[] {
    const now = this.clock.now();
    return [...this.banned.values()].filter((b) => b.until > now).map((b) => ({ ...b }));
  }

  /** Lifts a ban (the control API's DELETE /bans/{source}); false when there was none. */
  lift(address: string): boolean {
    const ban = this.banned.get(address);
    if (!ban) return false;
    this.banned.delete(address);
    const c = this.counters.get(address);
    if (c) {
      c.messages = 0;
      c.authFailures = [];
    }
    this.events.emit('EventSourceUnbanned', { source: address, reason: ban.reason, lifted: true, time: this.clock.now() });
    return true;
  }

  private ban(address: string, reason: BanReason): void {
    if (this.banned.has(address)) return;
    // Bounded like the counters: past MAX_BANS the oldest ban goes first.
    if (this.banned.size >= MAX_BANS) {
      const oldest = this.banned.keys().next().value;
      if (oldest !== undefined) this.banned.delete(oldest);
    }
    const now = this.clock.now();
    const until = now + this.limits.banMs;
    this.banned.set(address, { source: address, reason, since: now, until, dropped: 1 });
    this.events.emit('EventSourceBanned', { source: address, reason, until, time: now });
  }

  private countersOf(address: string): Counters {
    let c = this.counters.get(address);
    if (!c) {
      if (this.counters.size >= MAX_TRACKED) this.sweep(true);
      c = { windowStart: this.clock.now(), messages: 0, authFailures: [], connections: 0, pendingBytes: 0 };
      this.counters.set(address, c);
    }
    return c;
  }

  /** Forgets sources with nothing to remember: no connection, no recent message or failure. */
  private sweep(all = false): void {
    const now = this.clock.now();
    for (const [address, c] of this.counters) {
      const recent = now - c.windowStart < 1000 || c.authFailures.some((t) => now - t < this.limits.authWindowMs);
      if (c.connections === 0 && c.pendingBytes === 0 && (all || !recent)) this.counters.delete(address);
    }
    for (const [address, ban] of this.banned) {
      if (ban.until > now) continue;
      this.banned.delete(address);
      this.events.emit('EventSourceUnbanned', { source: address, reason: ban.reason, lifted: false, time: now });
    }
  }
}
