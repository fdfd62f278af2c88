import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Binding, CallRecord } from '../../../src/registrar/binding.js';
import { MemoryStore } from '../../../src/registrar/memory-store.js';
import { SqliteStore } from '../../../src/registrar/sqlite-store.js';
import type { Store } from '../../../src/registrar/store.js';
import { SipServerError } from '../../../src/util/errors.js';

const NOW = 1_700_000_000_000;

function binding(over: Partial<Binding> = {}): Binding {
  return {
    aor: '1001',
    contact: 'sip:1001@192.0.2.1:5060;transport=tcp',
    expiresAt: NOW + 3_600_000,
    callId: 'abc@192.0.2.1',
    cseq: 1,
    transport: 'TCP',
    source: { address: '192.0.2.1', port: 5060 },
    flowState: 'live',
    registeredAt: NOW,
    ...over,
  };
}

const dirs: string[] = [];
const stores: Store[] = [];
afterEach(() => {
  for (const s of stores.splice(0)) s.close();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const kinds: [string, () => Store][] = [
  ['MemoryStore', () => new MemoryStore()],
  [
    'SqliteStore',
    () => {
      const dir = mkdtempSync(join(tmpdir(), 'store-contract-'));
      dirs.push(dir);
      return new SqliteStore(join(dir, 'state.db'));
    },
  ],
];

describe.each(kinds)('%s: the Store contract', (_name, make) => {
  const open = (): Store => {
    const s = make();
    stores.push(s);
    return s;
  };

  it('returns what was put, every optional field included', () => {
    const s = open();
    const full = binding({ flowId: 'f1', q: 0.5, userAgent: 'Phone/1.0', instanceId: '<urn:uuid:1>', regId: 1, flowState: 'dead', natted: true });
    s.put(full);
    expect(s.load(NOW)).toEqual([full]);
  });

  it('leaves absent optional fields absent', () => {
    const s = open();
    s.put(binding());
    const [b] = s.load(NOW);
    expect(b).toEqual(binding());
    expect(b && 'flowId' in b).toBe(false);
  });

  it('replaces the binding with the same aor and contact', () => {
    const s = open();
    s.put(binding());
    s.put(binding({ cseq: 2, expiresAt: NOW + 60_000 }));
    expect(s.load(NOW).map((b) => [b.cseq, b.expiresAt])).toEqual([[2, NOW + 60_000]]);
  });

  it('removes one binding, or all of an aor', () => {
    const s = open();
    s.put(binding({ contact: 'sip:a@h' }));
    s.put(binding({ contact: 'sip:b@h' }));
    s.put(binding({ aor: '1002', contact: 'sip:c@h' }));
    s.remove('1001', 'sip:a@h');
    s.remove('1001', 'sip:not-there@h');
    expect(s.load(NOW).map((b) => b.contact)).toEqual(['sip:b@h', 'sip:c@h']);
    s.removeAll('1001');
    expect(s.load(NOW).map((b) => b.contact)).toEqual(['sip:c@h']);
  });

  it('drops expired bindings at load, the instant of expiry included, and keeps them dropped', () => {
    const s = open();
    s.put(binding({ contact: 'sip:gone@h', expiresAt: NOW - 1 }));
    s.put(binding({ contact: 'sip:edge@h', expiresAt: NOW }));
    s.put(binding({ contact: 'sip:live@h', expiresAt: NOW + 1 }));
    expect(s.load(NOW).map((b) => b.contact)).toEqual(['sip:live@h']);
    expect(s.load(NOW - 10).map((b) => b.contact)).toEqual(['sip:live@h']);
  });

  it('does not share objects with the caller', () => {
    const s = open();
    const b = binding();
    s.put(b);
    b.source.port = 1;
    const [loaded] = s.load(NOW);
    expect(loaded?.source.port).toBe(5060);
  });

  it('keeps call records, replacing by id, newest first, filtered by dn and time', () => {
    const s = open();
    const rec = (id: string, over: Partial<CallRecord> = {}): CallRecord => ({ id, fromDn: '1001', toDn: '1002', startedAt: NOW, ...over });
    s.addCallRecord(rec('c1', { startedAt: NOW }));
    s.addCallRecord(rec('c2', { startedAt: NOW + 10, fromDn: '1003', toDn: '1004' }));
    s.addCallRecord(rec('c3', { startedAt: NOW + 20, toDn: '1003', callId: 'x@y' }));
    s.addCallRecord(rec('c1', { startedAt: NOW, answeredAt: NOW + 1, endedAt: NOW + 5, cause: 'normal' }));
    expect(s.listCallRecords().map((c) => c.id)).toEqual(['c3', 'c2', 'c1']);
    expect(s.listCallRecords({ dn: '1003' }).map((c) => c.id)).toEqual(['c3', 'c2']);
    expect(s.listCallRecords({ since: NOW + 10 }).map((c) => c.id)).toEqual(['c3', 'c2']);
    expect(s.listCallRecords({ limit: 1 }).map((c) => c.id)).toEqual(['c3']);
    expect(s.listCallRecords({ dn: '1001', since: NOW - 1 }).find((c) => c.id === 'c1')).toEqual(
      rec('c1', { answeredAt: NOW + 1, endedAt: NOW + 5, cause: 'normal' }),
    );
  });

  it('keeps a released call in full (unknown caller, who released it, legs, transfer) and finds it by id', () => {
    const s = open();
    const full: CallRecord = {
      id: 'c9',
      callId: 'a@h',
      fromDn: null,
      caller: 'anonymous',
      toDn: '1002',
      startedAt: NOW,
      endedAt: NOW + 9,
      cause: 'busy',
      status: 486,
      releasedBy: 'callee',
      legs: { caller: { callId: 'a@h', transport: 'UDP', remote: '127.0.0.1:5062' }, callee: { callId: 'b@h', transport: 'TCP', remote: '127.0.0.1:5080', dn: '1002' } },
      transferredTo: '1003',
      newCallId: 'c10',
    };
    s.addCallRecord(full);
    expect(s.getCallRecord('c9')).toEqual(full);
    expect(s.getCallRecord('nope')).toBeUndefined();
    expect(s.listCallRecords({ dn: '1002' })).toEqual([full]);
  });

  it('refuses use after close with STORE_CLOSED, and close twice is harmless', () => {
    const s = make();
    s.close();
    s.close();
    expect(() => s.put(binding())).toThrow(expect.objectContaining({ code: 'STORE_CLOSED' }) as Error);
    expect(() => s.load(NOW)).toThrow(SipServerError);
  });
});
