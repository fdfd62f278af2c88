import { getHeader, getHeaderValues, type SipHeader, type SipRequest, type SipResponse } from '../sip/message.js';
import { parseNameAddr } from '../sip/name-addr.js';
import { createResponse } from '../sip/response.js';
import { isSipUri, parseUri } from '../sip/uri.js';
import type { ServerTransaction } from '../transaction/types.js';
import type { Flow } from '../transport/flow.js';
import type { Directory } from '../directory/directory.js';
import type { CheckTarget } from '../directory/oos-check.js';
import type { Clock } from '../util/clock.js';
import { SipParseError } from '../util/errors.js';
import { newTag } from '../util/ids.js';
import { detach } from '../util/detach.js';
import type { Logger } from '../util/logger.js';
import { TypedEvents } from '../util/typed-events.js';
import { bindingKey, type Binding } from './binding.js';
import { contactDestination } from '../dialog/contact-destination.js';
import { BindingTable } from './binding-table.js';
import { BindingTargets } from './binding-targets.js';
import { Refusal, requestedContacts, type ContactRequest } from './contact-request.js';
import { registerPath, type RegisterPath } from './outbound.js';
import { DigestAuth } from './digest-auth.js';
import type { RegistrarEvents } from './registrar-events.js';
import type { BindingStore, BindingWrite } from './store.js';

export interface RegistrarOptions {
  /** Granted when a REGISTER asks for no expiry (registrar-default-expires), seconds. */
  defaultExpiresS: number;
  /** Shorter requests get 423 with Min-Expires (registrar-min-expires), seconds. */
  minExpiresS: number;
  /**
   * Flow-Timer (RFC 5626 §4.4.1) in the 200 to a directly connected outbound phone on a
   * stream, seconds (registrar-flow-timer); 0 or absent: not sent.
   */
  flowTimerS?: number;
  /**
   * Group commit: REGISTERs wait for `defer` (the server: the end of the event-loop turn) and
   * are then written in one store commit and answered together. Without it each REGISTER is
   * committed and answered at once.
   */
  defer?: (commit: () => void) => void;
}

/** A REGISTER of a group and the answer it gets once the group is committed. */
interface Answer {
  tx: ServerTransaction;
  req: SipRequest;
  res: SipResponse;
}

/** A REGISTER waiting for its group's commit. */
interface Waiting {
  tx: ServerTransaction;
  req: SipRequest;
}

/** What a group of REGISTERs changed, kept until their commit: to undo it, or to announce it. */
interface Group {
  /** The bindings of each DN the group touched, as they were before it. */
  before: Map<string, Binding[]>;
  /** Its events and DN state changes, in the order they happened, to be made at its commit. */
  announcements: Array<() => void>;
  /** Its writes, committed together. */
  writes: BindingWrite[];
}

/** Who needs no credentials, and where a failed authentication is counted. */
export interface SourceAccess {
  trusted(address: string): boolean;
  authFailed(address: string): void;
}

/**
 * The registrar (RFC 3261 §10.3) for the DNs of the directory. Bindings are kept in memory,
 * written to the store before the 200 OK, expired on the Clock, and loaded again at start-up.
 * A binding remembers the flow (connection) its REGISTER came on, so requests to the DN use
 * that connection while it lives. A DN with `contact: "*"` is in service while it has a
 * binding and out of service when its last one goes.
 */
export class Registrar {
  readonly events: TypedEvents<RegistrarEvents>;
  private readonly table: BindingTable;
  private readonly targets: BindingTargets;
  /** REGISTERs received since the last commit (group commit: see RegistrarOptions.defer). */
  private waiting: Waiting[] = [];
  /** The group being committed, while its REGISTERs are handled; undefined otherwise. */
  private group: Group | undefined;
  /** A group's commit to a shared store is under way: the next group waits for it. */
  private committing = false;
  /** The group whose commit is under way (shared store), and the AORs other instances changed meanwhile. */
  private inFlight: Group | undefined;
  private readonly changedMeanwhile = new Set<string>();

  constructor(
    private readonly directory: Directory,
    private readonly store: BindingStore,
    private readonly auth: DigestAuth,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly opts: RegistrarOptions,
    /** Which sources are trusted, and where failed authentications are counted (per-source limits). */
    private readonly access: SourceAccess,
  ) {
    this.events = new TypedEvents<RegistrarEvents>((err, name) => log.error({ err, event: name }, 'registrar listener failed'));
    this.table = new BindingTable(clock, log, (b) => {
      this.drop(b, 'expired');
      if (!this.table.has(b.aor)) this.directory.setState(b.aor, 'out-of-service', 'registration expired');
    });
    this.targets = new BindingTargets(this.table, directory, (b) => {
      this.log.info({ dn: b.aor, contact: b.contact, instance: b.instanceId, regId: b.regId }, '430 Flow Failed: binding removed');
      this.drop(b, 'removed');
      if (!this.table.has(b.aor)) this.directory.setState(b.aor, 'out-of-service', 'flow failed (430)');
    });
  }

  /**
   * Loads live bindings from the store. Their flows belonged to the previous process, so
   * stream bindings start with a dead flow and are reached at their Contact address — or
   * through their Path. On a shared store the other instances' bindings keep their state
   * (their flows are theirs), and their changes are followed from then on.
   */
  start(): void | Promise<void> {
    const loaded = this.store.load(this.clock.now());
    if (loaded instanceof Promise) return loaded.then((all) => this.started(all));
    this.started(loaded);
  }

  private started(loaded: Binding[]): void {
    const stale: BindingWrite[] = [];
    for (const stored of loaded) {
      if (!this.loadable(stored)) stale.push({ kind: 'remove', aor: stored.aor, key: bindingKey(stored) });
      else this.table.keep(this.loaded(stored));
    }
    if (stale.length > 0) this.persist(stale);
    for (const dn of this.table.dns()) this.directory.setState(dn, 'in-service', 'registration loaded');
    this.log.info({ bindings: this.allBindings().length }, 'registrations loaded');
    this.store.shared?.watch({ changed: (aor, bindings) => this.replaced(aor, bindings), resync: (all) => this.resynced(all) });
  }

  /** A DN removed from the config, or one that now has a fixed contact, keeps no bindings. */
  private loadable(b: Binding): boolean {
    return this.directory.get(b.aor)?.options.contact === '*';
  }

  /** A binding as read from the store: no flow object; ours (or any, unshared) with its flow gone. */
  private loaded(stored: Binding): Binding {
    const b: Binding = { ...stored };
    delete b.flow;
    const theirs = this.store.shared !== undefined && b.owner !== undefined && b.owner !== this.store.shared.instance;
    if (!theirs) {
      delete b.flowId;
      if (b.transport !== 'UDP') b.flowState = 'dead';
    }
    return b;
  }

  /**
   * Another instance changed `aor` (shared store): its bindings become these. Ours keep the
   * flow they are on; no registration events (they were that instance's), only the DN state.
   */
  private replaced(aor: string, rows: Binding[]): void {
    if (this.directory.get(aor)?.options.contact !== '*') return;
    // Read before our own commit of this AOR is in: applying it would drop what that commit
    // writes. Read again once it is.
    if (this.inFlight?.before.has(aor)) {
      this.changedMeanwhile.add(aor);
      return;
    }
    const old = this.table.clear(aor);
    for (const row of rows) {
      const mine = old.find((o) => o.flow !== undefined && bindingKey(o) === bindingKey(row) && o.flowId === row.flowId && row.owner === this.store.shared?.instance);
      const b = this.loaded(row);
      if (mine?.flow !== undefined) {
        b.flow = mine.flow;
        b.flowId = mine.flow.id;
        b.flowState = mine.flowState;
      }
      this.table.keep(b);
    }
    const has = this.table.has(aor);
    this.directory.setState(aor, has ? 'in-service' : 'out-of-service', has ? 'registered (another instance)' : 'no registration');
  }

  /** The shared store is back after a loss: every binding from it, changes missed meanwhile included. */
  private resynced(all: Binding[]): void {
    const byAor = new Map<string, Binding[]>();
    for (const b of all) byAor.set(b.aor, [...(byAor.get(b.aor) ?? []), b]);
    for (const aor of new Set([...this.table.dns(), ...byAor.keys()])) this.replaced(aor, byAor.get(aor) ?? []);
    this.log.info({ bindings: all.length }, 'registrations re-read from the shared store');
  }

  stop(): void {
    this.commitWaiting();
    this.table.stop();
  }

  bindingsOf(dn: string): Binding[] {
    return this.table.of(dn);
  }

  allBindings(): Binding[] {
    return this.table.all();
  }

  /**
   * Where requests to a DN go now: for a `*` DN its best binding (highest q, then the most
   * recently registered; an outbound phone's freshest flow) on its live flow, at its Contact
   * or through its Path; for a fixed DN its contact (binding-targets.ts).
   */
  targetOf(dn: string): CheckTarget | undefined {
    return this.targets.targetOf(dn);
  }

  /** The DNs registered on `flow` while it lives. */
  dnsOnFlow(flow: Flow): string[] {
    return [...new Set(this.table.onFlow(flow).map((b) => b.aor))];
  }

  /** Whether a request from `source` comes from a phone registered as `dn` (binding-targets.ts). */
  registeredAt(dn: string, source: { transport: string; address: string; port: number; flow?: Flow }): boolean {
    return this.targets.registeredAt(dn, source);
  }

  /** The REGISTER handler for the UAS core: answered after the commit of its group. */
  handleRegister(tx: ServerTransaction, req: SipRequest): void {
    this.waiting.push({ tx, req });
    const defer = this.opts.defer;
    if (!defer) this.commitWaiting();
    else if (this.waiting.length === 1) defer(() => this.commitWaiting());
  }

  /** The REGISTERs waiting, as one group; not while a group's commit is under way (its end calls this). */
  private commitWaiting(): void {
    if (this.committing) return;
    const group = this.waiting;
    this.waiting = [];
    if (group.length > 0) this.commit(group);
  }

  /** Writes outside a group (an expiry, a 430, bindings no longer configured): committed now, a failure logged. */
  private persist(writes: BindingWrite[]): void {
    const failed = (err: unknown): void => this.log.error({ err, writes: writes.length }, 'binding change not stored');
    try {
      const pending = this.store.commit(writes);
      if (pending) pending.catch(failed);
    } catch (err) {
      failed(err);
    }
  }

  /** A write: with the group being handled, or now. */
  private write(w: BindingWrite): void {
    if (this.group) this.group.writes.push(w);
    else this.persist([w]);
  }

  /**
   * Handles a group of REGISTERs in order, each seeing what the ones before it did, and writes
   * every binding they changed in one store transaction. Only once it has committed are they
   * answered — never a 200 before the binding is durable (SPEC §8) — and their events sent.
   * When the commit fails, the bindings in memory are put back as they were, no event is
   * sent, and every REGISTER of the group gets 500 Registration Not Stored but those refused
   * (a challenge, a 404) before the failure, which get their refusal.
   */
  private commit(waiting: Waiting[]): void {
    const group: Group = { before: new Map(), announcements: [], writes: [] };
    const answers: Answer[] = [];
    this.group = group;
    let pending: void | Promise<void>;
    try {
      for (const { tx, req } of waiting) answers.push({ tx, req, res: this.answer(tx, req) });
      this.group = undefined;
      pending = group.writes.length > 0 ? this.store.commit(group.writes) : undefined;
    } catch (err) {
      this.group = undefined;
      this.notStored(err, group, waiting, answers);
      return;
    }
    if (!pending) {
      this.committed(group, answers);
      return;
    }
    // A shared store: the next group waits for this one, so that an undo never puts back
    // what a later group built on.
    this.committing = true;
    this.inFlight = group;
    pending
      .then(
        () => this.committed(group, answers),
        (err: unknown) => this.notStored(err, group, waiting, answers),
      )
      .finally(() => {
        this.committing = false;
        this.inFlight = undefined;
        if (this.changedMeanwhile.size > 0) {
          this.store.shared?.reread([...this.changedMeanwhile]);
          this.changedMeanwhile.clear();
        }
        this.commitWaiting();
      });
  }

  private committed(group: Group, answers: Answer[]): void {
    for (const announce of group.announcements) announce();
    for (const { tx, res } of answers) this.respond(tx, res);
  }

  private notStored(err: unknown, group: Group, waiting: Waiting[], answers: Answer[]): void {
    this.log.error({ err, registers: waiting.length }, 'REGISTER not stored');
    this.undo(group);
    const answered = new Map(answers.map((a) => [a.tx, a.res]));
    for (const { tx, req } of waiting) {
      const refused = answered.get(tx);
      this.respond(tx, refused && refused.status >= 300 ? refused : createResponse(req, 500, 'Registration Not Stored', { toTag: newTag() }));
    }
  }

  /** One answer of a group: a transaction that can no longer take it does not keep the others from theirs. */
  private respond(tx: ServerTransaction, res: SipResponse): void {
    try {
      tx.respond(res);
    } catch (err) {
      this.log.warn({ err, tx: tx.id, status: res.status }, 'REGISTER answer not sent');
    }
  }

  /** One REGISTER's answer: 200 with the DN's bindings, or the refusal. Store errors are thrown. */
  private answer(tx: ServerTransaction, req: SipRequest): SipResponse {
    try {
      return createResponse(req, 200, 'OK', { toTag: newTag(), headers: this.register(tx, req) });
    } catch (err) {
      if (err instanceof Refusal) return createResponse(req, err.status, err.reason, { toTag: newTag(), headers: err.headers });
      if (err instanceof SipParseError) return createResponse(req, 400, err.reason, { toTag: newTag() });
      throw err;
    }
  }

  /** Puts back the bindings of every DN the group touched, with their timers and flows. */
  private undo(group: Group): void {
    for (const [dn, before] of group.before) {
      this.table.clear(dn);
      for (const b of before) this.table.keep(b);
    }
  }

  /** An event or a DN state change: now, or at the commit of the group being handled. */
  private announce(announcement: () => void): void {
    if (this.group) this.group.announcements.push(announcement);
    else announcement();
  }

  private register(tx: ServerTransaction, req: SipRequest): SipHeader[] {
    const dn = this.addressOfRecord(req);
    const entry = this.directory.get(dn);
    const trusted = this.access.trusted(tx.source.address);
    const password = entry?.options['authenticate-requests'].includes('register') ? entry.options.password : undefined;
    // Authenticate or be trusted (SPEC §9): a DN that cannot be authenticated — unknown, no
    // password — may be registered only from a trusted source; from anywhere else it gets the
    // same challenge and 403 as a wrong password, so nothing tells the two apart.
    const refused = password !== undefined ? this.auth.check(req, dn, password) : trusted ? undefined : this.auth.decoy(req, dn);
    if (refused) {
      if (refused.detail) this.log.info({ dn, source: `${tx.source.address}:${tx.source.port}`, why: refused.detail }, 'REGISTER refused');
      if (refused.status === 403) this.access.authFailed(tx.source.address);
      throw new Refusal(refused.status, refused.reason, refused.headers);
    }
    if (!entry) throw new Refusal(404, `Unknown DN ${dn}`);
    if (entry.options.contact !== '*') throw new Refusal(403, 'DN Has a Fixed Contact');
    const callId = getHeader(req, 'call-id') ?? '';
    const cseq = Number((getHeader(req, 'cseq') ?? '0').split(/\s+/)[0]);
    const contacts = requestedContacts(req, this.opts);
    const route = registerPath(req, contacts);
    const now = this.clock.now();
    if (this.group && !this.group.before.has(dn)) this.group.before.set(dn, this.bindingsOf(dn));
    if (contacts === '*') {
      for (const b of this.bindingsOf(dn)) {
        if (b.callId === callId && b.cseq >= cseq) throw new Refusal(500, 'Out of Order REGISTER');
      }
      for (const b of this.bindingsOf(dn)) this.drop(b, 'removed');
    } else {
      for (const c of contacts) {
        const old = this.bindingOf(dn, keyOf(c, route));
        if (old && old.callId === callId && old.cseq >= cseq) throw new Refusal(500, 'Out of Order REGISTER');
      }
      for (const c of contacts) this.apply(dn, c, route, tx, req, callId, cseq, now);
    }
    // The DN's state follows its bindings as they are when announced (at the commit, after its whole group).
    this.announce(() => this.directory.setState(dn, this.table.has(dn) ? 'in-service' : 'out-of-service', this.table.has(dn) ? 'registered' : 'no registration'));
    const headers: SipHeader[] = this.bindingsOf(dn).map((b) => ({ name: 'Contact', value: contactValue(b, now) }));
    if (route.echoPath) for (const value of route.path) headers.push({ name: 'Path', value });
    if (route.outbound) {
      // RFC 5626 §6: the phone learns from Require that its flows are kept as flows.
      headers.push({ name: 'Require', value: 'outbound' });
      const flowTimer = this.opts.flowTimerS ?? 0;
      if (route.firstHop && flowTimer > 0 && tx.source.transport !== 'UDP') headers.push({ name: 'Flow-Timer', value: String(flowTimer) });
    }
    headers.push({ name: 'Date', value: new Date(now).toUTCString() });
    return headers;
  }

  private apply(dn: string, c: ContactRequest, route: RegisterPath, tx: ServerTransaction, req: SipRequest, callId: string, cseq: number, now: number): void {
    const old = this.bindingOf(dn, keyOf(c, route));
    if (c.expiresS === 0) {
      if (old) this.drop(old, 'removed');
      return;
    }
    const src = tx.source;
    // Kept for the registration's lifetime: copies, not slices of the REGISTER's text.
    const b: Binding = {
      aor: detach(dn),
      contact: detach(c.contact),
      expiresAt: now + c.expiresS * 1000,
      callId: detach(callId),
      cseq,
      transport: src.transport,
      source: { address: src.address, port: src.port },
      flowState: 'live',
      registeredAt: old?.registeredAt ?? now,
      updatedAt: now,
    };
    if (src.flow !== undefined) {
      b.flow = src.flow;
      b.flowId = src.flow.id;
    }
    if (route.path.length > 0) b.path = route.path.map(detach);
    // Behind an edge proxy the Path says where the phone is; NAT is the proxy's business.
    else if (!this.access.trusted(src.address) && contactDestination(c.contact, src.transport)?.address !== src.address) b.natted = true;
    const q = c.na.params.get('q');
    if (q) b.q = Number(q);
    const ua = getHeaderValues(req, 'user-agent')[0];
    if (ua !== undefined) b.userAgent = detach(ua);
    if (c.instanceId !== undefined) b.instanceId = detach(c.instanceId);
    if (c.regId !== undefined) b.regId = c.regId;
    if (route.outbound && c.regId !== undefined) b.outbound = true;
    if (this.store.shared) b.owner = this.store.shared.instance;
    // Committed (with the rest of its group) before the 200 OK: a registration acknowledged survives a crash (SPEC §8).
    this.write({ kind: 'put', binding: b });
    this.table.keep(b);
    const event = {
      dn,
      contact: b.contact,
      expires: c.expiresS,
      transport: b.transport,
      source: `${b.source.address}:${b.source.port}`,
      ...(b.flowId !== undefined ? { flowId: b.flowId } : {}),
      ...(b.outbound ? { instance: b.instanceId, regId: b.regId } : {}),
      ...(b.path ? { path: b.path } : {}),
      refresh: old !== undefined,
      time: now,
    };
    this.announce(() => this.events.emit('EventRegistered', event));
  }

  /** The DN named by the To header's user part (RFC 3261 §10.3 step 5). */
  private addressOfRecord(req: SipRequest): string {
    const to = getHeader(req, 'to');
    if (to === undefined) throw new SipParseError('Missing To header');
    const uri = parseUri(parseNameAddr(to, 'To').uri);
    if (!isSipUri(uri)) throw new Refusal(400, 'To Must Be a SIP or SIPS URI');
    if (!uri.user) throw new Refusal(404, 'No User in To');
    return decodeURIComponent(uri.user);
  }

  private bindingOf(dn: string, key: string): Binding | undefined {
    return this.table.find(dn, key);
  }

  /** Removes `b` — from memory, from the store, with EventUnregistered at its group's commit. */
  private drop(b: Binding, reason: 'removed' | 'expired'): void {
    if (!this.table.remove(b)) return;
    this.write({ kind: 'remove', aor: b.aor, key: bindingKey(b) });
    const event = { dn: b.aor, contact: b.contact, reason, time: this.clock.now() };
    this.announce(() => this.events.emit('EventUnregistered', event));
  }
}

/** The key the binding a Contact asks for has (or would have). */
function keyOf(c: ContactRequest, route: RegisterPath): string {
  return bindingKey({ contact: c.contact, outbound: route.outbound && c.regId !== undefined, instanceId: c.instanceId, regId: c.regId });
}

/** A binding as listed in the 200 (RFC 3261 §10.3 step 8), with its instance and reg-id when it is a flow. */
function contactValue(b: Binding, now: number): string {
  const expires = Math.max(0, Math.round((b.expiresAt - now) / 1000));
  const flow = b.outbound ? `;+sip.instance=${b.instanceId ?? ''};reg-id=${b.regId ?? ''}` : '';
  return `<${b.contact}>;expires=${expires}${flow}`;
}
