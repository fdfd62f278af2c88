import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryStore } from '../../../src/registrar/memory-store.js';
import { SqliteStore } from '../../../src/registrar/sqlite-store.js';
import { openStore, type Store } from '../../../src/registrar/store.js';
import { SipServerError } from '../../../src/util/errors.js';

let dir = '';
const opened: Store[] = [];
afterEach(() => {
  for (const s of opened.splice(0)) s.close();
  if (dir !== '') rmSync(dir, { recursive: true, force: true });
  dir = '';
});
function keep(s: Store): Store {
  opened.push(s);
  return s;
}

describe('openStore: the `store` option', () => {
  it('memory: gives a MemoryStore', () => {
    const s = keep(openStore('memory:'));
    expect(s).toBeInstanceOf(MemoryStore);
    expect(s.description).toBe('memory:');
  });

  it('sqlite:PATH resolves a relative path against baseDir', () => {
    dir = mkdtempSync(join(tmpdir(), 'open-store-'));
    const s = keep(openStore('sqlite:state.db', { baseDir: dir }));
    expect(s).toBeInstanceOf(SqliteStore);
    expect(s.description).toBe(`sqlite:${join(dir, 'state.db')}`);
  });

  it('sqlite: with an absolute path uses it as is', () => {
    dir = mkdtempSync(join(tmpdir(), 'open-store-'));
    const path = join(dir, 'abs.db');
    expect(keep(openStore(`sqlite:${path}`, { baseDir: '/nowhere' })).description).toBe(`sqlite:${path}`);
  });

  it.each(['sqlite:', 'redis://x', 'memory', ''])('refuses %j with STORE_SPEC', (spec) => {
    expect(() => openStore(spec)).toThrow(SipServerError);
    expect(() => openStore(spec)).toThrow(expect.objectContaining({ code: 'STORE_SPEC' }) as Error);
  });
});
