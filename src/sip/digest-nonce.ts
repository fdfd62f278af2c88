import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Stateless-to-issue, stateful-to-use digest nonces (RFC 7616 §3.3 and §5.4).
 *
 * nonce = base64url(timestamp[8, ms, big-endian] ‖ random[12] ‖ HMAC-SHA256(secret, both)[16])
 *
 * Anyone holding the secret can check a nonce's authenticity and age without a table, so
 * issuing costs no memory. Replay protection needs memory: for each nonce used, the highest
 * nonce count (nc) seen. That map is bounded; entries of expired nonces are purged when it
 * fills, and if it is full of live ones the oldest is evicted and every untracked nonce
 * issued before it is answered 'stale' from then on (a fresh challenge, never a replay).
 * For the same reason nonces issued before this manager was created count as 'stale':
 * give a fresh random secret per process start, or accept that a restart re-challenges.
 * Pure apart from hashing: time and randomness are injected.
 */
export type NonceStatus = 'valid' | 'stale' | 'invalid';
export type NonceUse = NonceStatus | 'replay';

export interface NonceManagerOptions {
  /** HMAC key, at least 16 bytes. */
  secret: Buffer;
  /** Milliseconds since the epoch. */
  now: () => number;
  /** n random bytes (crypto.randomBytes in production). */
  random: (n: number) => Buffer;
  /** How long a nonce is 'valid'; after that it is 'stale'. */
  lifetimeMs: number;
  /** Most nonces whose use is remembered (default 100 000). */
  maxTracked?: number;
}

const TS_LEN = 8;
const RAND_LEN = 12;
const MAC_LEN = 16;
const NONCE_LEN = TS_LEN + RAND_LEN + MAC_LEN;

interface Use {
  issuedAt: number;
  /** Highest nc accepted; Infinity once used without qop (a second use is a replay). */
  lastNc: number;
}

export class NonceManager {
  private readonly secret: Buffer;
  private readonly now: () => number;
  private readonly random: (n: number) => Buffer;
  private readonly lifetimeMs: number;
  private readonly maxTracked: number;
  private readonly uses = new Map<string, Use>();
  /** Untracked nonces issued before this instant are 'stale' (see the class comment). */
  private forgottenBefore: number;

  constructor(opts: NonceManagerOptions) {
    if (opts.secret.length < 16) throw new RangeError('nonce secret must be at least 16 bytes');
    if (!(opts.lifetimeMs > 0)) throw new RangeError('nonce lifetimeMs must be positive');
    this.secret = Buffer.from(opts.secret);
    this.now = opts.now;
    this.random = opts.random;
    this.lifetimeMs = opts.lifetimeMs;
    this.maxTracked = Math.max(1, opts.maxTracked ?? 100_000);
    this.forgottenBefore = opts.now();
  }

  /** A fresh nonce: 48 base64url characters. */
  issue(): string {
    const head = Buffer.alloc(TS_LEN + RAND_LEN);
    head.writeBigUInt64BE(BigInt(Math.max(0, Math.floor(this.now()))), 0);
    const rand = this.random(RAND_LEN);
    if (rand.length !== RAND_LEN) throw new RangeError(`random(${RAND_LEN}) returned ${rand.length} bytes`);
    rand.copy(head, TS_LEN);
    return Buffer.concat([head, this.mac(head)]).toString('base64url');
  }

  /**
   * 'invalid': not made with this secret (or malformed); 'stale': authentic but expired or
   * forgotten; 'valid' otherwise. Does not record anything.
   */
  check(nonce: string): NonceStatus {
    const issuedAt = this.issuedAt(nonce);
    if (issuedAt === undefined) return 'invalid';
    const now = this.now();
    if (now - issuedAt > this.lifetimeMs) return 'stale';
    if (issuedAt - now > this.lifetimeMs) return 'invalid'; // from the far future: not ours
    if (issuedAt < this.forgottenBefore && !this.uses.has(nonce)) return 'stale';
    return 'valid';
  }

  /**
   * Records one use of a nonce after its response was verified. With qop, `nc` (8 hex
   * digits) must be greater than any nc seen with this nonce; without qop (nc undefined) the
   * nonce may be used only once. Anything else is a 'replay'. Non-'valid' nonces are
   * reported as check() would and not recorded.
   */
  consume(nonce: string, nc: string | undefined): NonceUse {
    const status = this.check(nonce);
    if (status !== 'valid') return status;
    let count: number;
    if (nc === undefined) count = Infinity;
    else if (/^[0-9a-fA-F]{8}$/.test(nc)) count = parseInt(nc, 16);
    else return 'replay';
    if (count === 0) return 'replay';
    const use = this.uses.get(nonce);
    if (use !== undefined) {
      if (nc === undefined || count <= use.lastNc) return 'replay';
      use.lastNc = count;
      return 'valid';
    }
    this.makeRoom();
    this.uses.set(nonce, { issuedAt: this.issuedAt(nonce) ?? 0, lastNc: count });
    return 'valid';
  }

  /** Forgets the uses of expired nonces. Call now and then, e.g. from a housekeeping timer. */
  purge(): void {
    const oldest = this.now() - this.lifetimeMs;
    for (const [nonce, use] of this.uses) if (use.issuedAt < oldest) this.uses.delete(nonce);
  }

  /** Nonces whose use is being remembered (for metrics and tests). */
  get tracked(): number {
    return this.uses.size;
  }

  private makeRoom(): void {
    if (this.uses.size < this.maxTracked) return;
    this.purge();
    while (this.uses.size >= this.maxTracked) {
      const first = this.uses.entries().next();
      if (first.done === true) return;
      const [nonce, use] = first.value;
      this.uses.delete(nonce);
      this.forgottenBefore = Math.max(this.forgottenBefore, use.issuedAt + 1);
    }
  }

  /** The issue time of an authentic, canonically encoded nonce, else undefined. */
  private issuedAt(nonce: string): number | undefined {
    if (nonce.length !== Math.ceil((NONCE_LEN * 4) / 3)) return undefined;
    const raw = Buffer.from(nonce, 'base64url');
    // Node's decoder skips stray characters: insist on the one canonical spelling, so that
    // two strings can never be the same nonce (the replay map is keyed by the string).
    if (raw.length !== NONCE_LEN || raw.toString('base64url') !== nonce) return undefined;
    const head = raw.subarray(0, TS_LEN + RAND_LEN);
    if (!timingSafeEqual(this.mac(head), raw.subarray(TS_LEN + RAND_LEN))) return undefined;
    return Number(raw.readBigUInt64BE(0));
  }

  private mac(head: Buffer): Buffer {
    return createHmac('sha256', this.secret).update(head).digest().subarray(0, MAC_LEN);
  }
}
