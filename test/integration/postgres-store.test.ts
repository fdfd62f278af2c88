import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Binding, CallRecord } from '../../src/registrar/binding.js';
import { PostgresStore } from '../../src/registrar/postgres-store.js';
import type { SharedBindingsListener } from '../../src/registrar/store.js';
import { SystemClock } from '../../src/util/clock.js';
import { silentLogger } from '../../src/util/logger.js';
import { startPostgres, type TestPostgres } from '../support/postgres.js';
import { waitFor } from '../support/wait-for.js';

/*
 * The PostgreSQL store on a real PostgreSQL server of the test's own: the schema made once
 * when several instances open at the same moment, bindings and call records back as written,
 * a batch kept whole or not at all, and the other instances told of each commit.
 */

const NOW = Date.now();

function binding(over: Partial<Binding> = {}): Binding {
  return {
    aor: '2001',
    contact: 'sip:2001@192.0.2.1:5070;transport=tcp',
    expiresAt: NOW + 3_600_000,
    callId: 'reg@192.0.2.1',
    cseq: 7,
    transport: 'TCP',
    source: { address: '192.0.2.1', port: 49152 },
    flowId: 'tcp-in-3',
    flowState: 'live',
    registeredAt: NOW - 1000,
    updatedAt: NOW,
    q: 0.5,
    userAgent: 'phone/1.0',
    instanceId: '"<urn:uuid:00000000-0000-1000-8000-000000000001>"',
    regId: 2,
    outbound: true,
    path: ['<sip:edge@198.51.100.7;lr;ob>'],
    owner: 'a',
    ...over,
  };
}

let pg: TestPostgres;
const stores: PostgresStore[] = [];

async function open(instance: string): Promise<PostgresStore> {
  const s = new PostgresStore(pg.url, { instance, log: silentLogger, clock: new SystemClock(), callRecordWindowMs: 20 });
  await s.open();
  stores.push(s);
  return s;
}

beforeAll(async () => {
  pg = await startPostgres();
}, 60_000);

afterAll(async () => {
  for (const s of stores.splice(0)) await s.close();
  pg?.destroy();
});

describe('PostgresStore on a real PostgreSQL', () => {
  it('three instances opening at once make the schema once; a binding comes back with every field', async () => {
    const [a, b] = await Promise.all([open('a'), open('b'), open('c')]);
    const written = binding();
    await a?.commit([{ kind: 'put', binding: written }]);
    expect(await b?.load(NOW)).toEqual([written]);
  });

  it('a batch is one transaction: a row the database refuses keeps the whole batch out', async () => {
    const a = await open('a2');
    const bad = { ...binding({ aor: '2003' }), transport: 'SCTP' } as unknown as Binding;
    await expect(a.commit([{ kind: 'put', binding: binding({ aor: '2002' }) }, { kind: 'put', binding: bad }])).rejects.toMatchObject({ code: 'STORE_WRITE' });
    expect((await a.load(NOW)).map((x) => x.aor)).not.toContain('2002');
  });

  it('load deletes expired bindings; remove by key removes one flow of two sharing a Contact', async () => {
    const a = await open('a3');
    const flow1 = binding({ aor: '2004', regId: 1 });
    const flow2 = binding({ aor: '2004', regId: 2 });
    await a.commit([{ kind: 'put', binding: flow1 }, { kind: 'put', binding: flow2 }, { kind: 'put', binding: binding({ aor: '2005', expiresAt: NOW - 1 }) }]);
    await a.commit([{ kind: 'remove', aor: '2004', key: `${flow1.instanceId ?? ''};reg-id=1` }]);
    const left = await a.load(NOW);
    expect(left.filter((x) => x.aor === '2004').map((x) => x.regId)).toEqual([2]);
    expect(left.map((x) => x.aor)).not.toContain('2005');
  });

  it('the other instances are told of a commit, with the AOR as it now is; the writer is not', async () => {
    const [a, b] = await Promise.all([open('w1'), open('w2')]);
    const seen: Record<string, { aor: string; n: number }[]> = { w1: [], w2: [] };
    const listener = (name: string): SharedBindingsListener => ({ changed: (aor, rows) => seen[name]?.push({ aor, n: rows.length }), resync: () => undefined });
    a.shared.watch(listener('w1'));
    b.shared.watch(listener('w2'));
    await a.commit([{ kind: 'put', binding: binding({ aor: '2006' }) }]);
    await waitFor(() => (seen.w2?.length ?? 0) > 0, 'the notice at w2', 5000);
    expect(seen.w2).toEqual([{ aor: '2006', n: 1 }]);
    expect(seen.w1).toEqual([]);
  });

  it('call records: written in a batch, listed newest first by DN, read by id, a second write replaces the first', async () => {
    const a = await open('r1');
    const b = await open('r2');
    const started: CallRecord = { id: 'call-1', fromDn: '2001', toDn: '2002', startedAt: NOW - 5000 };
    a.addCallRecord(started);
    a.addCallRecord({ id: 'call-2', fromDn: null, caller: '+4930123', toDn: '2002', startedAt: NOW - 1000 });
    a.addCallRecord({ ...started, answeredAt: NOW - 4000, endedAt: NOW - 2000, cause: 'normal', status: 200, releasedBy: 'caller' });
    await a.flushCallRecords();
    expect((await b.listCallRecords({ dn: '2002' })).map((r) => r.id)).toEqual(['call-2', 'call-1']);
    expect(await b.getCallRecord('call-1')).toEqual({ ...started, answeredAt: NOW - 4000, endedAt: NOW - 2000, cause: 'normal', status: 200, releasedBy: 'caller' });
    expect(await b.getCallRecord('nope')).toBeUndefined();
  });
});
