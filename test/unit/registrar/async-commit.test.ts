import { describe, expect, it } from 'vitest';
import type { DnOptions } from '../../../src/config/schema.js';
import { MemoryStore } from '../../../src/registrar/memory-store.js';
import type { BindingWrite, SharedBindings, SharedBindingsListener } from '../../../src/registrar/store.js';
import { flushPromises } from '../../support/fake-transport.js';
import { source } from '../../support/sip-builders.js';
import { dn, eventNames, register, world } from './harness.js';

/*
 * The registrar on a store whose commit answers later (a shared database, PostgreSQL): a
 * REGISTER is answered only once its group's commit has resolved, the next group waits for
 * it, and a rejected commit is a 500 with everything put back.
 */

/** A MemoryStore whose commits wait until the test settles them, in order. */
class SlowStore extends MemoryStore {
  readonly pending: Array<{ writes: readonly BindingWrite[]; resolve: () => void; reject: (err: Error) => void }> = [];

  // The registrar sees any store as a BindingStore, whose commit() may return a promise.
  // eslint-disable-next-line @typescript-eslint/no-misused-promises
  override commit(writes: readonly BindingWrite[]): Promise<void> {
    return new Promise((resolve, reject) => {
      this.pending.push({
        writes,
        resolve: () => {
          super.commit(writes);
          resolve();
        },
        reject,
      });
    });
  }
}

function dns(): Record<string, DnOptions> {
  return { '1001': dn({ type: 'extension', contact: '*' }), '1002': dn({ type: 'extension', contact: '*' }) };
}

/** A SlowStore shared with other instances: the test plays their notices. */
class SharedSlowStore extends SlowStore {
  listener: SharedBindingsListener | undefined;
  readonly rereads: string[][] = [];
  readonly shared: SharedBindings = { instance: 'a', watch: (l) => (this.listener = l), reread: (aors) => this.rereads.push(aors) };
}

function slowWorld(store: SlowStore = new SlowStore()) {
  const w = world(dns(), { store });
  const statuses = (): number[] => w.transport.sent.flatMap((s) => (s.kind === 'response' ? [s.message.status] : []));
  const receive = (dnNumber: string, cseq = 1): void => w.layer.receive({ message: register({ dn: dnNumber, expires: 300, cseq, callId: `c-${dnNumber}` }), source: source('UDP') });
  return { store, w, statuses, receive };
}

describe('Registrar on a store that commits later', () => {
  it('answers 200 only once the commit has resolved; events and the DN state come with it', async () => {
    const { store, w, statuses, receive } = slowWorld();
    receive('1001');
    expect(statuses()).toEqual([]);
    expect(store.pending).toHaveLength(1);
    expect(eventNames(w)).toEqual([]);
    expect(w.directory.get('1001')?.state).toBe('out-of-service');
    store.pending[0]?.resolve();
    await flushPromises();
    expect(statuses()).toEqual([200]);
    expect(eventNames(w)).toEqual(['EventRegistered', 'EventDNBackInService']);
    expect(store.load(w.clock.now()).map((b) => b.aor)).toEqual(['1001']);
  });

  it('a REGISTER that arrives while a commit is under way waits for it, then is a group of its own', async () => {
    const { store, statuses, receive } = slowWorld();
    receive('1001');
    receive('1002');
    expect(store.pending).toHaveLength(1);
    store.pending[0]?.resolve();
    await flushPromises();
    expect(statuses()).toEqual([200]);
    expect(store.pending).toHaveLength(2);
    expect(store.pending[1]?.writes.map((x) => (x.kind === 'put' ? x.binding.aor : x.aor))).toEqual(['1002']);
    store.pending[1]?.resolve();
    await flushPromises();
    expect(statuses()).toEqual([200, 200]);
  });

  it('a rejected commit is 500 Registration Not Stored: the binding is put back, no event, the DN stays out of service', async () => {
    const { store, w, statuses, receive } = slowWorld();
    receive('1001');
    store.pending[0]?.reject(new Error('connection refused'));
    await flushPromises();
    expect(statuses()).toEqual([500]);
    expect(w.transport.sent.at(-1)?.message).toMatchObject({ reason: 'Registration Not Stored' });
    expect(w.registrar.bindingsOf('1001')).toEqual([]);
    expect(eventNames(w)).toEqual([]);
    expect(w.directory.get('1001')?.state).toBe('out-of-service');
    // The phone's retry, once the store is back, is stored.
    receive('1001', 2);
    store.pending[1]?.resolve();
    await flushPromises();
    expect(statuses()).toEqual([500, 200]);
  });

  it('a shared store: another instance\'s change read while our commit of that DN is under way is set aside and read again after it', async () => {
    const store = new SharedSlowStore();
    const { w, statuses, receive } = slowWorld(store);
    receive('1001');
    // The other instance's notice about 1001, read before our commit is in: no binding.
    store.listener?.changed('1001', []);
    expect(w.registrar.bindingsOf('1001')).toHaveLength(1);
    store.pending[0]?.resolve();
    await flushPromises();
    expect(statuses()).toEqual([200]);
    expect(w.registrar.bindingsOf('1001')).toHaveLength(1);
    expect(store.rereads).toEqual([['1001']]);
    expect(w.registrar.bindingsOf('1001')[0]?.owner).toBe('a');
    // A notice about a DN not being committed is applied at once.
    const ours = w.registrar.bindingsOf('1001')[0];
    if (!ours) throw new Error('no binding');
    store.listener?.changed('1002', [{ ...ours, aor: '1002', contact: 'sip:1002@192.0.2.1:5060', owner: 'b' }]);
    expect(w.directory.get('1002')?.state).toBe('in-service');
  });
});
