import { SipServerError } from '../util/errors.js';
import { bindingKey, type Binding, type CallRecord } from './binding.js';
import type { BindingWrite, CallRecordQuery, Store } from './store.js';

/**
 * The `memory:` store: same contract as SqliteStore, nothing survives the process. For tests
 * and for deployments that accept re-registration after every restart. Values are copied in
 * and out, so callers never share objects with the store.
 */
export class MemoryStore implements Store {
  readonly description = 'memory:';
  private readonly bindings = new Map<string, Map<string, Binding>>();
  private readonly calls = new Map<string, CallRecord>();
  private closed = false;

  load(now: number): Binding[] {
    this.assertOpen();
    const out: Binding[] = [];
    for (const [aor, byContact] of this.bindings) {
      for (const [contact, b] of byContact) if (b.expiresAt <= now) byContact.delete(contact);
      if (byContact.size === 0) this.bindings.delete(aor);
      else out.push(...[...byContact.values()].map(copyBinding));
    }
    return out.sort((a, b) => cmp(a.aor, b.aor) || a.registeredAt - b.registeredAt || cmp(a.contact, b.contact));
  }

  put(binding: Binding): void {
    this.assertOpen();
    let byContact = this.bindings.get(binding.aor);
    if (byContact === undefined) {
      byContact = new Map();
      this.bindings.set(binding.aor, byContact);
    }
    byContact.set(bindingKey(binding), copyBinding(binding));
  }

  remove(aor: string, key: string): void {
    this.assertOpen();
    const byContact = this.bindings.get(aor);
    byContact?.delete(key);
    if (byContact?.size === 0) this.bindings.delete(aor);
  }

  removeAll(aor: string): void {
    this.assertOpen();
    this.bindings.delete(aor);
  }

  /** Nothing to commit in memory; a closed store refuses as every write would. */
  transaction<T>(fn: () => T): T {
    this.assertOpen();
    return fn();
  }

  /** The registrar's commit: `writes` in one transaction(). */
  commit(writes: readonly BindingWrite[]): void {
    this.transaction(() => {
      for (const w of writes) {
        if (w.kind === 'put') this.put(w.binding);
        else this.remove(w.aor, w.key);
      }
    });
  }

  addCallRecord(record: CallRecord): void {
    this.assertOpen();
    this.calls.set(record.id, { ...record });
  }

  getCallRecord(id: string): CallRecord | undefined {
    this.assertOpen();
    const c = this.calls.get(id);
    return c && { ...c };
  }

  listCallRecords(query: CallRecordQuery = {}): CallRecord[] {
    this.assertOpen();
    const { dn, since } = query;
    const limit = Math.max(0, Math.floor(query.limit ?? 100));
    return [...this.calls.values()]
      .filter((c) => (dn === undefined || c.fromDn === dn || c.toDn === dn) && (since === undefined || c.startedAt >= since))
      .sort((a, b) => b.startedAt - a.startedAt || cmp(b.id, a.id))
      .slice(0, limit)
      .map((c) => ({ ...c }));
  }

  close(): void {
    this.closed = true;
  }

  private assertOpen(): void {
    if (this.closed) throw new SipServerError('STORE_CLOSED', 'store memory: is closed');
  }
}

/** A copy without the flow: a store keeps what outlives the process, and a flow does not. */
function copyBinding(b: Binding): Binding {
  const { flow: _flow, ...kept } = b;
  return { ...kept, source: { ...b.source }, ...(b.path ? { path: [...b.path] } : {}) };
}

/** Plain string order (matches SQLite's BINARY collation for ASCII keys). */
function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
