import { isAbsolute, resolve } from 'node:path';
import { SipServerError } from '../util/errors.js';
import type { Binding, CallRecord } from './binding.js';
import { MemoryStore } from './memory-store.js';
import { SqliteStore, type SqliteStoreOptions } from './sqlite-store.js';
import { maskPassword, PostgresStore } from './postgres-store.js';
import type { Clock } from '../util/clock.js';
import type { Logger } from '../util/logger.js';

/** One change to the bindings, as the registrar commits them: a binding written, or removed by its key (bindingKey). */
export type BindingWrite = { kind: 'put'; binding: Binding } | { kind: 'remove'; aor: string; key: string };

/**
 * What the registrar needs of where bindings live (SPEC §3.1 `store`, §8): the embedded
 * stores answer at once (SQLite in microseconds), a shared database with a promise. Either
 * way the registrar answers 200 only once commit() has returned or resolved.
 *
 * Failures are SipServerError: 'STORE_OPEN' when the store cannot be opened (the message names
 * it), 'STORE_WRITE' / 'STORE_READ' at run time (the registrar answers 500, not 200).
 */
export interface BindingStore {
  /** Deletes expired bindings (expiresAt <= now) and returns the rest. Called at start-up. */
  load(now: number): Binding[] | Promise<Binding[]>;
  /** Makes `writes` durable together, or none of them (one transaction): thrown or rejected. */
  commit(writes: readonly BindingWrite[]): void | Promise<void>;
  /** Present on a store several instances share. */
  readonly shared?: SharedBindings;
}

/** A store shared by several instances: whose bindings are whose, and what the others change. */
export interface SharedBindings {
  /** This instance's name (`instance-name`), the owner of the bindings whose flows it holds. */
  readonly instance: string;
  /**
   * Tells `listener` about every AOR another instance changed, once committed, with its
   * bindings as they now are; and, after the store was lost and found again, every binding
   * (changes in between may have been missed).
   */
  watch(listener: SharedBindingsListener): void;
  /** Reads these AORs again and tells the listener (`changed`), after the notices already queued. */
  reread(aors: string[]): void;
}

export interface SharedBindingsListener {
  changed(aor: string, bindings: Binding[]): void;
  resync(all: Binding[]): void;
}

/**
 * The embedded stores' registration side: synchronous, as the registrar's group commit was
 * first written for. put/remove/transaction are theirs; commit() is transaction() over them.
 */
export interface RegistrationStore extends BindingStore {
  load(now: number): Binding[];
  /** Adds or replaces the binding with this (aor, bindingKey). Durable when it returns (inside transaction(): when that does). */
  put(binding: Binding): void;
  /** Removes the binding of `aor` with this bindingKey (its Contact, or an outbound flow's instance and reg-id). */
  remove(aor: string, key: string): void;
  removeAll(aor: string): void;
  /**
   * Runs `fn`, whose writes become durable together, as one commit, when it returns; when it
   * throws (or the commit fails) none of them is kept, and the error is thrown.
   */
  transaction<T>(fn: () => T): T;
  commit(writes: readonly BindingWrite[]): void;
}

export interface CallRecordQuery {
  /** Records involving this DN as caller or callee. */
  dn?: string;
  /** Records started at or after this time (ms since the epoch). */
  since?: number;
  /** Most records returned, newest first (default 100). */
  limit?: number;
}

/** Call records as the call manager writes and the API reads them: at once, or (a shared store) by promise. */
export interface CallRecords {
  /** Adds a record, or replaces the one with the same id (a call may be written when it starts and again when it ends). Never waits. */
  addCallRecord(record: CallRecord): void;
  /** Newest first. */
  listCallRecords(query?: CallRecordQuery): CallRecord[] | Promise<CallRecord[]>;
  /** The record with this id (the server's call id), if there is one. */
  getCallRecord(id: string): CallRecord | undefined | Promise<CallRecord | undefined>;
}

export interface CallRecordStore extends CallRecords {
  listCallRecords(query?: CallRecordQuery): CallRecord[];
  getCallRecord(id: string): CallRecord | undefined;
}

/** An embedded store: SQLite or memory. */
export interface Store extends RegistrationStore, CallRecordStore {
  /** The spec it was opened with, e.g. "sqlite:/var/lib/sip-server/state.db", for logs. */
  readonly description: string;
  /** Flushes and releases the store; further calls throw. Idempotent. */
  close(): void;
}

/** Any store the server runs on: embedded, or shared by several instances (PostgreSQL). */
export interface ServerStore extends BindingStore, CallRecords {
  readonly description: string;
  /** Connects (a shared store); the embedded ones are open once made. */
  open?(): Promise<void>;
  close(): void | Promise<void>;
}

export interface OpenStoreOptions extends SqliteStoreOptions {
  /** Relative sqlite paths are resolved against this directory (default: the working directory). */
  baseDir?: string;
  /** For a shared store: this instance's name, where the store logs, and the clock of its timers. */
  shared?: { instance: string; log: Logger; clock: Clock };
}

/**
 * Makes the store named by the `store` option: `sqlite:PATH`, `memory:`, or a PostgreSQL
 * URL (`postgres://` or `postgresql://`), which is connected by its open().
 * Throws SipServerError 'STORE_SPEC' for anything else and 'STORE_OPEN' when the file cannot
 * be used.
 */
export function openStore(spec: string, opts: OpenStoreOptions = {}): Store | PostgresStore {
  if (spec === 'memory:') return new MemoryStore();
  if (/^postgres(ql)?:\/\//.test(spec)) {
    if (!opts.shared) throw new SipServerError('STORE_SPEC', `store "${maskPassword(spec)}": a shared store needs the instance's name`);
    const windowMs = opts.callRecordWindow?.ms;
    return new PostgresStore(spec, { ...opts.shared, ...(windowMs !== undefined ? { callRecordWindowMs: windowMs } : {}), ...(opts.onWriteError ? { onWriteError: opts.onWriteError } : {}) });
  }
  if (spec.startsWith('sqlite:')) {
    const path = spec.slice('sqlite:'.length);
    if (path === '') throw new SipServerError('STORE_SPEC', `store "${spec}" is invalid: expected sqlite:PATH with a file path`);
    const full = path === ':memory:' || isAbsolute(path) ? path : resolve(opts.baseDir ?? process.cwd(), path);
    return new SqliteStore(full, opts);
  }
  throw new SipServerError('STORE_SPEC', `store "${spec}" is invalid: expected sqlite:PATH, memory: or postgres://…`);
}
