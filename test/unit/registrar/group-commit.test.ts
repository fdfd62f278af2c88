import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import type { DnOptions } from '../../../src/config/schema.js';
import { SqliteStore } from '../../../src/registrar/sqlite-store.js';
import type { SipResponse } from '../../../src/sip/message.js';
import { source } from '../../support/sip-builders.js';
import { dn, eventNames, register, world, type World } from './harness.js';

function dns(): Record<string, DnOptions> {
  return {
    '1001': dn({ type: 'extension', contact: '*' }),
    '1002': dn({ type: 'extension', contact: '*' }),
    '1003': dn({ type: 'extension', contact: '*' }),
  };
}

let dir = '';
afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = '';
});

/** A world over a real SQLite file whose REGISTERs wait for `commit()` (the end of the turn, in the server). */
function grouped(busyTimeoutMs = 2000): { w: World; path: string; commit: () => void } {
  dir = mkdtempSync(join(tmpdir(), 'group-commit-'));
  const path = join(dir, 'state.db');
  const deferred: Array<() => void> = [];
  const w = world(dns(), { store: new SqliteStore(path, { busyTimeoutMs }), defer: (fn) => deferred.push(fn) });
  return {
    w,
    path,
    commit: () => {
      for (const fn of deferred.splice(0)) fn();
    },
  };
}

function responses(w: World): SipResponse[] {
  return w.transport.responses();
}

/** The contacts the file holds for `aor`, read over a connection of its own (what a restart would load). */
function storedContacts(path: string, aor: string): string[] {
  const db = new Database(path, { readonly: true });
  try {
    return db.prepare<[string], { contact: string }>('SELECT contact FROM bindings WHERE aor = ? ORDER BY contact').all(aor).map((r) => r.contact);
  } finally {
    db.close();
  }
}

function toUser(res: SipResponse): string {
  return /sip:([^@]+)@/.exec(res.headers.find((h) => h.name === 'To')?.value ?? '')?.[1] ?? '';
}

describe('Registrar: group commit', () => {
  it('the REGISTERs of one turn are answered together, after one commit, each binding already in the file when its 200 goes out', () => {
    const { w, path, commit } = grouped();
    for (const n of ['1001', '1002', '1003']) w.layer.receive({ message: register({ dn: n, callId: `c-${n}`, expires: 300 }), source: source('UDP') });
    expect(responses(w)).toEqual([]);
    expect(w.events).toEqual([]);

    const seen: Array<[string, number, string[]]> = [];
    w.transport.beforeResponse = (res) => seen.push([toUser(res), res.status, storedContacts(path, toUser(res))]);
    commit();
    expect(seen).toEqual([
      ['1001', 200, ['sip:1001@192.0.2.1:5060']],
      ['1002', 200, ['sip:1002@192.0.2.1:5060']],
      ['1003', 200, ['sip:1003@192.0.2.1:5060']],
    ]);
    expect(eventNames(w)).toEqual(['EventRegistered', 'EventDNBackInService', 'EventRegistered', 'EventDNBackInService', 'EventRegistered', 'EventDNBackInService']);
  });

  it('a REGISTER sees the ones before it in its group: the same Call-ID with a lower CSeq is out of order', () => {
    const { w, commit } = grouped();
    w.layer.receive({ message: register({ callId: 'same', cseq: 5, expires: 300, contacts: ['<sip:1001@192.0.2.1:5070>'] }), source: source('UDP') });
    w.layer.receive({ message: register({ callId: 'same', cseq: 4, expires: 300, contacts: ['<sip:1001@192.0.2.1:5070>'] }), source: source('UDP') });
    commit();
    expect(responses(w).map((r) => `${r.status} ${r.reason}`)).toEqual(['200 OK', '500 Out of Order REGISTER']);
  });

  it('a commit that fails (another process holds the file locked): every REGISTER of the group gets 500, memory and file are as before, no event; a refusal decided before the failure is still sent', () => {
    const { w, path, commit } = grouped(50);
    w.layer.receive({ message: register({ dn: '1001', callId: 'first', expires: 300 }), source: source('UDP') });
    commit();
    expect(responses(w).map((r) => r.status)).toEqual([200]);
    const before = w.registrar.bindingsOf('1001');
    w.transport.sent.length = 0;
    w.events.length = 0;

    const locker = new Database(path);
    locker.exec('BEGIN IMMEDIATE');
    try {
      w.layer.receive({ message: register({ dn: '4242', callId: 'unknown', expires: 300 }), source: source('UDP') });
      w.layer.receive({ message: register({ dn: '1001', callId: 'first', cseq: 2, expires: 300, contacts: ['<sip:1001@192.0.2.1:5080>'] }), source: source('UDP') });
      w.layer.receive({ message: register({ dn: '1002', callId: 'second', expires: 300 }), source: source('UDP') });
      commit();
    } finally {
      locker.exec('ROLLBACK');
      locker.close();
    }
    expect(responses(w).map((r) => `${r.status} ${r.reason}`)).toEqual(['404 Unknown DN 4242', '500 Registration Not Stored', '500 Registration Not Stored']);
    expect(w.registrar.bindingsOf('1001')).toEqual(before);
    expect(w.registrar.bindingsOf('1002')).toEqual([]);
    expect(w.directory.get('1002')?.state).toBe('out-of-service');
    expect(w.events).toEqual([]);
    expect(storedContacts(path, '1001')).toEqual(['sip:1001@192.0.2.1:5060']);
    expect(storedContacts(path, '1002')).toEqual([]);

    // The file is free again: the same REGISTERs go through, and the old binding still expires on time.
    w.layer.receive({ message: register({ dn: '1002', callId: 'second', cseq: 2, expires: 300 }), source: source('UDP') });
    commit();
    expect(responses(w).at(-1)?.status).toBe(200);
    expect(storedContacts(path, '1002')).toEqual(['sip:1002@192.0.2.1:5060']);
    w.clock.advance(300_000);
    expect(w.registrar.bindingsOf('1001')).toEqual([]);
    expect(storedContacts(path, '1001')).toEqual([]);
  });
});
