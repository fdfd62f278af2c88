import { randomBytes } from 'node:crypto';

/** RFC 3261 §8.1.1.7: branch parameters start with the magic cookie. */
export const BRANCH_COOKIE = 'z9hG4bK';

export function randomToken(bytes = 8): string {
  return randomBytes(bytes).toString('hex');
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
