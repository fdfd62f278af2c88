import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { detach } from '../../../src/util/detach.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Heap in use after a full collection, in MB. */
function heapMb(): number {
  gc();
  return process.memoryUsage().heapUsed / 1e6;
}

describe('detach', () => {
  it('keeps the text, equal and of its own: 40 cuts of 40 parents of 1 MB each hold far less than the parents', () => {
    const base = heapMb();
    const kept: string[] = [];
    for (let i = 0; i < 40; i++) {
      const parent = `${i}${'x'.repeat(1_000_000)}Call-ID: kept-${i}@192.0.2.1`;
      const cut = parent.slice(1_000_000 - 5, parent.length);
      const copy = detach(cut);
      expect(copy).toBe(cut);
      kept.push(copy);
    }
    expect(heapMb() - base).toBeLessThan(5);
  });

  it('a cut kept without it holds its parent (what detach is for)', () => {
    const base = heapMb();
    const kept: string[] = [];
    for (let i = 0; i < 40; i++) kept.push(`${i}${'x'.repeat(1_000_000)}Call-ID: kept-${i}@192.0.2.1`.slice(1_000_000 - 5));
    expect(heapMb() - base).toBeGreaterThan(30);
    expect(kept).toHaveLength(40);
  });
});
