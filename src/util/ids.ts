import { randomBytes } from 'node:crypto';

/** RFC 3261 §8.1.1.7: branch parameters start with the magic cookie. */
export const BRANCH_COOKIE = 'z9hG4bK';

/**
 * Random bytes are drawn 4 KiB at a time and handed out in slices: a randomBytes() call per
 * branch, tag and Call-ID was ~3 % of the CPU at 1,500 calls/s. Same source (the CSPRNG),
 * never a byte handed out twice.
 */
const POOL_SIZE = 4096;
let pool = randomBytes(POOL_SIZE);
let used = 0;

export function randomToken(bytes = 8): string {
  if (bytes > POOL_SIZE) return randomBytes(bytes).toString('hex');
  if (used + bytes > POOL_SIZE) {
    pool = randomBytes(POOL_SIZE);
    used = 0;
  }
  const token = pool.toString('hex', used, used + bytes);
  used += bytes;
  return token;
}

export function newBranch(): string {
  return BRANCH_COOKIE + randomToken(8);
}

export function newTag(): string {
  return randomToken(6);
}

export function newCallId(host: string): string {
  return `${randomToken(12)}@${host}`;
}
