/**
 * Shared set-up for registrar, directory and OOS-check tests: real Directory, Registrar,
 * MemoryStore, DigestAuth and NonceManager over a real TransactionLayer, with only the
 * network (FakeTransport) and time (ManualClock) stood in for.
 */
import { randomBytes } from 'node:crypto';
import { expect } from 'vitest';
import { dnSchema, type DnOptions } from '../../../src/config/schema.js';
import { Directory, type DnStateEvent } from '../../../src/directory/directory.js';
import { MemoryStore } from '../../../src/registrar/memory-store.js';
import type { Store } from '../../../src/registrar/store.js';
import { DigestAuth } from '../../../src/registrar/digest-auth.js';
import type { RegisteredEvent, UnregisteredEvent } from '../../../src/registrar/registrar-events.js';
import { Registrar } from '../../../src/registrar/registrar.js';
import { NonceManager } from '../../../src/sip/digest.js';
import { SIP_VERSION, type SipHeader, type SipRequest, type SipResponse } from '../../../src/sip/message.js';
import { TransactionLayer } from '../../../src/transaction/transaction-layer.js';
import type { SendResult, Source, TransportName } from '../../../src/transport/types.js';
import { silentLogger } from '../../../src/util/logger.js';
import { FakeTransport } from '../../support/fake-transport.js';
import { ManualClock } from '../../support/manual-clock.js';
import { source } from '../../support/sip-builders.js';

export const REALM = 'sip.test';
export const NONCE_LIFETIME_MS = 300_000;
export const DEFAULT_EXPIRES_S = 3600;
export const MIN_EXPIRES_S = 60;

/** A FakeTransport that lets a test look at the world at the moment a response is sent. */
export class HookedTransport extends FakeTransport {
  beforeResponse: ((res: SipResponse) => void) | undefined;

  override sendResponse(res: SipResponse, requestSource: Source): Promise<SendResult> {
    this.beforeResponse?.(res);
    return super.sendResponse(res, requestSource);
  }
}

/** Every event of the directory and the registrar, in the order emitted. */
export type Recorded =
  | { name: 'EventDNOutOfService' | 'EventDNBackInService'; event: DnStateEvent }
  | { name: 'EventRegistered'; event: RegisteredEvent }
  | { name: 'EventUnregistered'; event: UnregisteredEvent };

export interface World {
  clock: ManualClock;
  transport: HookedTransport;
  directory: Directory;
  store: Store;
  nonces: NonceManager;
  registrar: Registrar;
  layer: TransactionLayer;
  events: Recorded[];
  /** Hands `req` to the transaction layer as if it came from `src`; returns the one response sent. */
  send(req: SipRequest, src?: Source): SipResponse;
}

export function dn(options: Partial<DnOptions> & Pick<DnOptions, 'type' | 'contact'>): DnOptions {
  return dnSchema.parse(options);
}

/**
 * Builds the world with `dns` (parsed through the schema, so defaults apply). `beforeStart`
 * runs after construction and before registrar.start(), e.g. to seed the store.
 */
export function world(
  dns: Record<string, DnOptions>,
  opts: {
    beforeStart?: (store: Store) => void;
    clock?: ManualClock;
    /** A store of the test's (default: a MemoryStore). */
    store?: Store;
    /** Group commit (RegistrarOptions.defer); without it every REGISTER is answered at once. */
    defer?: (commit: () => void) => void;
    /** Flow-Timer for outbound phones (RegistrarOptions.flowTimerS). */
    flowTimerS?: number;
  } = {},
): World {
  const clock = opts.clock ?? new ManualClock();
  const transport = new HookedTransport();
  const directory = new Directory(dns, clock, silentLogger);
  const store = opts.store ?? new MemoryStore();
  const nonces = new NonceManager({ secret: Buffer.alloc(32, 7), now: () => clock.now(), random: randomBytes, lifetimeMs: NONCE_LIFETIME_MS });
  // Every source is trusted here (these tests are about RFC 3261 §10.3); access control has its own tests.
  const registrar = new Registrar(
    directory,
    store,
    new DigestAuth(REALM, nonces),
    clock,
    silentLogger,
    {
      defaultExpiresS: DEFAULT_EXPIRES_S,
      minExpiresS: MIN_EXPIRES_S,
      ...(opts.defer ? { defer: opts.defer } : {}),
      ...(opts.flowTimerS !== undefined ? { flowTimerS: opts.flowTimerS } : {}),
    },
    { trusted: () => true, authFailed: () => undefined },
  );
  const layer = new TransactionLayer({
    clock,
    transport,
    log: silentLogger,
    onRequest: (tx, req) => {
      if (req.method === 'REGISTER') registrar.handleRegister(tx, req);
    },
  });
  const events: Recorded[] = [];
  directory.events.on('EventDNOutOfService', (event) => events.push({ name: 'EventDNOutOfService', event }));
  directory.events.on('EventDNBackInService', (event) => events.push({ name: 'EventDNBackInService', event }));
  registrar.events.on('EventRegistered', (event) => events.push({ name: 'EventRegistered', event }));
  registrar.events.on('EventUnregistered', (event) => events.push({ name: 'EventUnregistered', event }));
  opts.beforeStart?.(store);
  // An embedded store loads at once: start() returns nothing to wait for.
  if (registrar.start() instanceof Promise) throw new Error('an embedded store should load synchronously');
  const send = (req: SipRequest, src: Source = source('UDP')): SipResponse => {
    const before = transport.sent.length;
    layer.receive({ message: req, source: src });
    const sent = transport.sent.slice(before).flatMap((s) => (s.kind === 'response' ? [s.message] : []));
    expect(sent).toHaveLength(1);
    return sent[0] as SipResponse;
  };
  return { clock, transport, directory, store, nonces, registrar, layer, events, send };
}

export interface RegisterSpec {
  dn?: string;
  /** Contact header values, one header each; none for a query. */
  contacts?: string[];
  /** Expires header, seconds; absent when undefined. */
  expires?: number;
  callId?: string;
  cseq?: number;
  transport?: TransportName;
  /** Via sent-by, "host:port". */
  sentBy?: string;
  /** Via values above the phone's (edge proxies, topmost first). */
  proxyVias?: string[];
  headers?: SipHeader[];
}

let branchSeq = 0;

/** A REGISTER for `dn` (To and From sip:DN@127.0.0.1), each call with a new Via branch. */
export function register(spec: RegisterSpec = {}): SipRequest {
  const number = spec.dn ?? '1001';
  const headers: SipHeader[] = [
    ...(spec.proxyVias ?? []).map((value) => ({ name: 'Via', value })),
    { name: 'Via', value: `SIP/2.0/${spec.transport ?? 'UDP'} ${spec.sentBy ?? '192.0.2.1:5060'};branch=z9hG4bK-reg-${++branchSeq}` },
    { name: 'Max-Forwards', value: '70' },
    { name: 'From', value: `<sip:${number}@127.0.0.1>;tag=reg-from-1` },
    { name: 'To', value: `<sip:${number}@127.0.0.1>` },
    { name: 'Call-ID', value: spec.callId ?? 'reg-call-1@192.0.2.1' },
    { name: 'CSeq', value: `${spec.cseq ?? 1} REGISTER` },
    ...(spec.contacts ?? [`<sip:${number}@192.0.2.1:5060>`]).map((value) => ({ name: 'Contact', value })),
    ...(spec.expires === undefined ? [] : [{ name: 'Expires', value: String(spec.expires) }]),
    ...(spec.headers ?? []),
  ];
  return { kind: 'request', version: SIP_VERSION, method: 'REGISTER', uri: 'sip:127.0.0.1', headers, body: Buffer.alloc(0) };
}

/** The names of the recorded events, in order, optionally only those about `number`. */
export function eventNames(w: World, number?: string): string[] {
  return w.events.filter((e) => number === undefined || e.event.dn === number).map((e) => e.name);
}
