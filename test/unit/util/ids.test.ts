import { describe, expect, it } from 'vitest';
import { BRANCH_COOKIE, newBranch, newCallId, newTag, randomToken } from '../../../src/util/ids.js';

describe('ids', () => {
  it('tokens are hex of the asked length and never repeat, across refills of the random pool', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 3000; i++) {
      const t = randomToken(8);
      expect(t).toMatch(/^[0-9a-f]{16}$/);
      seen.add(t);
    }
    expect(seen.size).toBe(3000);
    expect(randomToken(5000)).toHaveLength(10000);
  });

  it('branches carry the RFC 3261 magic cookie; tags and Call-IDs have their shapes', () => {
    expect(newBranch().startsWith(BRANCH_COOKIE)).toBe(true);
    expect(newTag()).toMatch(/^[0-9a-f]{12}$/);
    expect(newCallId('192.0.2.1')).toMatch(/^[0-9a-f]{24}@192\.0\.2\.1$/);
  });
});
