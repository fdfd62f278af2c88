import { isAbsolute, resolve } from 'node:path';
import { SipServerError } from '../util/errors.js';
import type { Binding, CallRecord } from './binding.js';
import { MemoryStore } from './memory-store.js';
import { SqliteStore, type SqliteStoreOptions } from './sqlite-store.js';

/**
 * Where registrations and call records live (SPEC §3.1 `store`, §8). Synchronous on purpose:
 * the registrar writes a binding and only then sends 200 OK, and an embedded store answers in
 * microseconds. A shared store would come behind the same interfaces.
 *
 * Failures are SipServerError: 'STORE_OPEN' when the store cannot be opened (the message names
 * the path), 'STORE_WRITE' / 'STORE_READ' at run time (the registrar answers 500, not 200).
 */
export interface RegistrationStore {
  /** Deletes expired bindings (expiresAt <= now) and returns the rest. Called at start-up. */
  load(now: number): Binding[];
  /** Adds or replaces the binding with this (aor, bindingKey). Durable when it returns (inside transaction(): when that does). */
  put(binding: Binding): void;
  /** Removes the binding of `aor` with this bindingKey (its Contact, or an outbound flow's instance and reg-id). */
  remove(aor: string, key: string): void;
  removeAll(aor: string): void;
  /**
   * Runs `fn`, whose writes become durable together, as one commit, when it returns; when it
   * throws (or the commit fails) none of them is kept, and the error is thrown. The registrar
   * answers a group of REGISTERs after one such commit.
   */
  transaction<T>(fn: () => T): T;
}

export interface CallRecordQuery {
  /** Records involving this DN as caller or callee. */
  dn?: string;
  /** Records started at or after this time (ms since the epoch). */
  since?: number;
  /** Most records returned, newest first (default 100). */
  limit?: number;
}

export interface CallRecordStore {
  /** Adds a record, or replaces the one with the same id (a call may be written when it starts and again when it ends). */
  addCallRecord(record: CallRecord): void;
  /** Newest first. */
  listCallRecords(query?: CallRecordQuery): CallRecord[];
  /** The record with this id (the server's call id), if there is one. */
  getCallRecord(id: string): CallRecord | undefined;
}

export interface Store extends RegistrationStore, CallRecordStore {
  /** The spec it was opened with, e.g. "sqlite:/var/lib/sip-server/state.db", for logs. */
  readonly description: string;
  /** Flushes and releases the store; further calls throw. Idempotent. */
  close(): void;
}

export interface OpenStoreOptions extends SqliteStoreOptions {
  /** Relative sqlite paths are resolved against this directory (default: the working directory). */
  baseDir?: string;
}

/**
 * Opens the store named by the `store` option: `sqlite:PATH` or `memory:`.
 * Throws SipServerError 'STORE_SPEC' for anything else and 'STORE_OPEN' when the file cannot
 * be used.
 */
export function openStore(spec: string, opts: OpenStoreOptions = {}): Store {
  if (spec === 'memory:') return new MemoryStore();
  if (spec.startsWith('sqlite:')) {
    const path = spec.slice('sqlite:'.length);
    if (path === '') throw new SipServerError('STORE_SPEC', `store "${spec}" is invalid: expected sqlite:PATH with a file path`);
    const full = path === ':memory:' || isAbsolute(path) ? path : resolve(opts.baseDir ?? process.cwd(), path);
    return new SqliteStore(full, opts);
  }
  throw new SipServerError('STORE_SPEC', `store "${spec}" is invalid: expected sqlite:PATH or memory:`);
}
