import { describe, expect, it } from 'vitest';
import { connectionCapacity, openFileLimit } from '../../../src/util/open-files.js';

const LIMITS = `Limit                     Soft Limit           Hard Limit           Units
Max cpu time              unlimited            unlimited            seconds
Max open files            20000                20000                files
Max locked memory         8388608              8388608              bytes
`;

describe('open files and how many connections the server can hold', () => {
  it('reads the soft limit from /proc/self/limits, and nothing when it cannot', () => {
    expect(openFileLimit(() => LIMITS)).toBe(20000);
    expect(openFileLimit(() => LIMITS.replace('20000                20000', '1024                 524288'))).toBe(1024);
    expect(openFileLimit(() => 'no such line')).toBeUndefined();
    expect(
      openFileLimit(() => {
        throw new Error('ENOENT');
      }),
    ).toBeUndefined();
    expect(openFileLimit()).toBeGreaterThan(0);
  });

  it('caps sip-max-connections at what this process, or its socket workers, can hold, keeping files for the rest', () => {
    expect(connectionCapacity(100_000, 0, 20_000)).toBe(19_800);
    expect(connectionCapacity(100_000, 6, 20_000)).toBe(100_000);
    expect(connectionCapacity(100_000, 2, 20_000)).toBe(39_800);
    expect(connectionCapacity(500, 0, 20_000)).toBe(500);
    expect(connectionCapacity(100_000, 0, undefined)).toBe(100_000);
    expect(connectionCapacity(100_000, 0, 150)).toBe(1);
  });
});
