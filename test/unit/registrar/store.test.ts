import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryStore } from '../../../src/registrar/memory-store.js';
import { SqliteStore } from '../../../src/registrar/sqlite-store.js';
import { PostgresStore } from '../../../src/registrar/postgres-store.js';
import { openStore, type ServerStore } from '../../../src/registrar/store.js';
import { SystemClock } from '../../../src/util/clock.js';
import { silentLogger } from '../../../src/util/logger.js';
import { SipServerError } from '../../../src/util/errors.js';

let dir = '';
const opened: ServerStore[] = [];
afterEach(async () => {
  for (const s of opened.splice(0)) await s.close();
  if (dir !== '') rmSync(dir, { recursive: true, force: true });
  dir = '';
});
function keep(s: ServerStore): ServerStore {
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

  it('postgres:// and postgresql:// give a PostgresStore (not connected until open()); its description hides the password', () => {
    const shared = { instance: 'a', log: silentLogger, clock: new SystemClock() };
    const s = keep(openStore('postgres://sip:s3cret@127.0.0.1:5432/sip', { shared }));
    expect(s).toBeInstanceOf(PostgresStore);
    expect(s.description).toBe('postgres://sip:***@127.0.0.1:5432/sip');
    expect(keep(openStore('postgresql://127.0.0.1/sip', { shared }))).toBeInstanceOf(PostgresStore);
  });

  it('opening a PostgresStore where no database listens fails with STORE_OPEN naming the store', async () => {
    const s: ServerStore = openStore('postgres://sip@127.0.0.1:1/sip', { shared: { instance: 'a', log: silentLogger, clock: new SystemClock() } });
    await expect(s.open?.()).rejects.toMatchObject({ code: 'STORE_OPEN', message: expect.stringMatching(/^cannot open store postgres:\/\/sip@127\.0\.0\.1:1\/sip: .*ECONNREFUSED/) as unknown });
  });

  it.each(['sqlite:', 'redis://x', 'memory', ''])('refuses %j with STORE_SPEC', (spec) => {
    expect(() => openStore(spec)).toThrow(SipServerError);
    expect(() => openStore(spec)).toThrow(expect.objectContaining({ code: 'STORE_SPEC' }) as Error);
  });
});
