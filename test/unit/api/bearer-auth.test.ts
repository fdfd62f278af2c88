import { describe, expect, it } from 'vitest';
import { BearerAuth } from '../../../src/api/bearer-auth.js';

describe('BearerAuth', () => {
  it('lets every request through when no token is configured', () => {
    expect(new BearerAuth(undefined).allows({})).toBe(true);
  });

  it('accepts only the exact bearer token', () => {
    const auth = new BearerAuth('s3cret');
    expect(auth.allows({ authorization: 'Bearer s3cret' })).toBe(true);
    expect(auth.allows({ authorization: 'bearer s3cret' })).toBe(true);
    expect(auth.allows({})).toBe(false);
    expect(auth.allows({ authorization: 'Bearer s3cre' })).toBe(false);
    expect(auth.allows({ authorization: 'Bearer s3cretX' })).toBe(false);
    expect(auth.allows({ authorization: 'Basic czNjcmV0' })).toBe(false);
    expect(auth.allows({ authorization: 's3cret' })).toBe(false);
  });
});
