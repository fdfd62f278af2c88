import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import Database from 'better-sqlite3';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Binding } from '../../../src/registrar/binding.js';
import { SCHEMA_VERSION, SqliteStore } from '../../../src/registrar/sqlite-store.js';
import { SipServerError } from '../../../src/util/errors.js';
import { ManualClock } from '../../support/manual-clock.js';

const NOW = 1_700_000_000_000;
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const COMPILED = join(ROOT, 'dist/registrar/sqlite-store.js');

/**
 * The crash victim, run by `node --input-type=module -e`: opens the compiled SqliteStore,
 * writes one binding, prints "written", then idles until SIGKILL, so no close(), no exit
 * handler and no checkpoint ever runs. argv: DB_PATH AOR CONTACT EXPIRES_AT_MS.
 */
const CHILD_SOURCE = `
import { SqliteStore } from ${JSON.stringify(pathToFileURL(COMPILED).href)};
const [path, aor, contact, expiresAt] = process.argv.slice(1);
const store = new SqliteStore(path);
store.put({
  aor, contact, expiresAt: Number(expiresAt), callId: 'crash-test@127.0.0.1', cseq: 7, transport: 'TCP',
  source: { address: '127.0.0.1', port: 40000 }, flowId: 'tcp:127.0.0.1:40000', flowState: 'live',
  registeredAt: Date.now(),
});
process.stdout.write('written\\n');
setInterval(() => {}, 60_000);
`;

function binding(over: Partial<Binding> = {}): Binding {
  return {
    aor: '1001',
    contact: 'sip:1001@192.0.2.1:5060',
    expiresAt: NOW + 3_600_000,
    callId: 'abc@192.0.2.1',
    cseq: 1,
    transport: 'UDP',
    source: { address: '192.0.2.1', port: 5060 },
    flowState: 'live',
    registeredAt: NOW,
    ...over,
  };
}

let dir = '';
const open: SqliteStore[] = [];
function tempDir(): string {
  dir = mkdtempSync(join(tmpdir(), 'sqlite-store-'));
  return dir;
}
afterEach(() => {
  for (const s of open.splice(0)) s.close();
  if (dir !== '') rmSync(dir, { recursive: true, force: true });
  dir = '';
});
function store(path: string): SqliteStore {
  const s = new SqliteStore(path);
  open.push(s);
  return s;
}

/** The SipServerError thrown by fn. */
function errorOf(fn: () => unknown): SipServerError {
  try {
    fn();
  } catch (err) {
    if (err instanceof SipServerError) return err;
    throw err;
  }
  throw new Error('did not throw');
}

describe('SqliteStore: on disk', () => {
  it('creates the file with WAL, synchronous=NORMAL and the current schema version', () => {
    const path = join(tempDir(), 'state.db');
    store(path).close();
    const db = new Database(path, { readonly: true });
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    expect(db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").pluck().all()).toEqual(['bindings', 'call_records']);
    db.close();
  });

  it('migrates a version 1 file: its call records keep their caller DN, and a caller may now be no DN', () => {
    const path = join(tempDir(), 'state.db');
    const v1 = new Database(path);
    v1.exec(`CREATE TABLE call_records (id TEXT NOT NULL PRIMARY KEY, call_id TEXT, from_dn TEXT NOT NULL, to_dn TEXT NOT NULL,
      started_at INTEGER NOT NULL, answered_at INTEGER, ended_at INTEGER, cause TEXT);
      CREATE TABLE bindings (aor TEXT NOT NULL, contact TEXT NOT NULL, expires_at INTEGER NOT NULL, call_id TEXT NOT NULL,
      cseq INTEGER NOT NULL, transport TEXT NOT NULL, source_address TEXT NOT NULL, source_port INTEGER NOT NULL, flow_id TEXT,
      flow_state TEXT NOT NULL, q REAL, user_agent TEXT, registered_at INTEGER NOT NULL, instance_id TEXT, reg_id INTEGER,
      PRIMARY KEY (aor, contact)) WITHOUT ROWID;
      INSERT INTO call_records VALUES ('old', 'x@y', '1001', '1002', ${NOW}, NULL, ${NOW + 5}, 'normal');
      PRAGMA user_version = 1;`);
    v1.close();
    const s = store(path);
    expect(s.getCallRecord('old')).toEqual({ id: 'old', callId: 'x@y', fromDn: '1001', caller: '1001', toDn: '1002', startedAt: NOW, endedAt: NOW + 5, cause: 'normal' });
    s.addCallRecord({ id: 'new', fromDn: null, caller: 'anonymous', toDn: '1002', startedAt: NOW + 1 });
    expect(s.listCallRecords().map((c) => [c.id, c.fromDn])).toEqual([['new', null], ['old', '1001']]);
  });

  it('keeps bindings and call records across close and reopen', () => {
    const path = join(tempDir(), 'state.db');
    const first = new SqliteStore(path);
    first.put(binding({ contact: 'sip:a@h', flowId: 'tcp:1' }));
    first.put(binding({ contact: 'sip:b@h', expiresAt: NOW + 1000 }));
    first.addCallRecord({ id: 'c1', fromDn: '1001', toDn: '1002', startedAt: NOW });
    first.close();
    const again = store(path);
    expect(again.load(NOW).map((b) => b.contact)).toEqual(['sip:a@h', 'sip:b@h']);
    expect(again.load(NOW + 1000).map((b) => b.contact)).toEqual(['sip:a@h']);
    expect(again.listCallRecords()).toEqual([{ id: 'c1', fromDn: '1001', toDn: '1002', startedAt: NOW }]);
  });

  it('writes the call records of one event-loop turn together, in the file once the turn is over', async () => {
    const path = join(tempDir(), 'state.db');
    const s = new SqliteStore(path);
    const reader = new Database(path, { readonly: true });
    const inFile = (): number => reader.prepare('SELECT count(*) FROM call_records').pluck().get() as number;
    for (let i = 0; i < 3; i++) s.addCallRecord({ id: `c${i}`, fromDn: '1001', toDn: '1002', startedAt: NOW + i });
    expect(inFile()).toBe(0);
    await new Promise((r) => setImmediate(r));
    expect(inFile()).toBe(3);
    // A read through the store itself never misses a record queued before it.
    s.addCallRecord({ id: 'c3', fromDn: '1001', toDn: '1002', startedAt: NOW + 3 });
    expect(s.listCallRecords().map((r) => r.id)).toContain('c3');
    expect(inFile()).toBe(4);
    reader.close();
    s.close();
  });

  it('with a call-record window, writes the records of that window together when its timer fires', () => {
    const path = join(tempDir(), 'state.db');
    const clock = new ManualClock(NOW);
    const s = new SqliteStore(path, { callRecordWindow: { clock, ms: 100 } });
    const reader = new Database(path, { readonly: true });
    const inFile = (): number => reader.prepare('SELECT count(*) FROM call_records').pluck().get() as number;
    s.addCallRecord({ id: 'c1', fromDn: '1001', toDn: '1002', startedAt: NOW });
    clock.advance(60);
    s.addCallRecord({ id: 'c2', fromDn: '1001', toDn: '1002', startedAt: NOW });
    expect(inFile()).toBe(0);
    clock.advance(40);
    expect(inFile()).toBe(2);
    expect(clock.pendingCount).toBe(0);
    reader.close();
    s.close();
  });

  it('deletes expired bindings from the file at load', () => {
    const path = join(tempDir(), 'state.db');
    const s = new SqliteStore(path);
    s.put(binding({ contact: 'sip:old@h', expiresAt: NOW - 1 }));
    s.load(NOW);
    s.close();
    const db = new Database(path, { readonly: true });
    expect(db.prepare('SELECT count(*) FROM bindings').pluck().get()).toBe(0);
    db.close();
  });

  it('works the same with synchronous FULL (the power-loss-safe choice)', () => {
    const path = join(tempDir(), 'state.db');
    const s = new SqliteStore(path, { synchronous: 'FULL' });
    s.put(binding());
    s.close();
    expect(store(path).load(NOW)).toHaveLength(1);
  });
});

describe('SqliteStore: files it cannot use', () => {
  it('a corrupt file gives STORE_OPEN naming the path', () => {
    const path = join(tempDir(), 'corrupt.db');
    writeFileSync(path, Buffer.alloc(8192, 'this is not an SQLite database. '));
    const err = errorOf(() => new SqliteStore(path));
    expect(err.code).toBe('STORE_OPEN');
    expect(err.message).toContain(path);
    expect(err.message).toMatch(/not a database/);
  });

  it('a directory that does not exist gives STORE_OPEN naming the path', () => {
    const path = join(tempDir(), 'missing', 'state.db');
    const err = errorOf(() => new SqliteStore(path));
    expect(err.code).toBe('STORE_OPEN');
    expect(err.message).toContain(path);
  });

  it('a path that is a directory gives STORE_OPEN', () => {
    const path = tempDir();
    expect(statSync(path).isDirectory()).toBe(true);
    expect(errorOf(() => new SqliteStore(path)).code).toBe('STORE_OPEN');
  });

  it('a file written by a newer build is refused, untouched', () => {
    const path = join(tempDir(), 'newer.db');
    const db = new Database(path);
    db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    db.close();
    const err = errorOf(() => new SqliteStore(path));
    expect(err.code).toBe('STORE_OPEN');
    expect(err.message).toMatch(/newer build/);
  });

  it('a write that fails at run time is STORE_WRITE, not a silent 200', () => {
    const s = store(join(tempDir(), 'state.db'));
    const bad = binding({ transport: 'SCTP' as Binding['transport'] });
    const err = errorOf(() => s.put(bad));
    expect(err.code).toBe('STORE_WRITE');
    expect(err.message).toContain('1001');
  });
});

describe('SqliteStore: a registration written survives kill -9 of the process', () => {
  beforeAll(() => {
    if (!existsSync(COMPILED)) throw new Error(`${COMPILED} is missing: run "npm run build" first (npm test does)`);
  });

  it('a binding put by a child that is then SIGKILLed is loaded by a fresh store', async () => {
    const path = join(tempDir(), 'crash.db');
    const expiresAt = Date.now() + 3_600_000;
    const child = spawn(process.execPath, ['--input-type=module', '-e', CHILD_SOURCE, path, '2001', 'sip:2001@127.0.0.1:40000;transport=tcp', String(expiresAt)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
    await new Promise<void>((resolve, reject) => {
      let out = '';
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('written\n')) resolve();
      });
      child.on('exit', (code) => reject(new Error(`child exited (${code}) before writing: ${stderr}`)));
    });
    child.kill('SIGKILL');
    expect(await exited).toBe('SIGKILL');
    // Killed before any checkpoint: the binding lives only in the write-ahead log.
    expect(existsSync(`${path}-wal`)).toBe(true);
    const loaded = store(path).load(Date.now());
    expect(loaded).toHaveLength(1);
    expect(loaded[0]).toMatchObject({
      aor: '2001',
      contact: 'sip:2001@127.0.0.1:40000;transport=tcp',
      expiresAt,
      cseq: 7,
      transport: 'TCP',
      flowState: 'live',
    });
  });
});
