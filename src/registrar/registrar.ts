import { getHeader, getHeaderValues, type SipHeader, type SipRequest, type SipResponse } from '../sip/message.js';
import { parseNameAddr } from '../sip/name-addr.js';
import { createResponse } from '../sip/response.js';
import { isSipUri, parseUri } from '../sip/uri.js';
import type { ServerTransaction } from '../transaction/types.js';
import type { Flow, FlowListener } from '../transport/flow.js';
import type { Destination } from '../transport/types.js';
import type { Directory } from '../directory/directory.js';
import type { CheckTarget } from '../directory/oos-check.js';
import type { Clock, TimerHandle } from '../util/clock.js';
import { SipParseError } from '../util/errors.js';
import { newTag } from '../util/ids.js';
import { detach } from '../util/detach.js';
import type { Logger } from '../util/logger.js';
import { TypedEvents } from '../util/typed-events.js';
import { bindingKey, type Binding } from './binding.js';
import { contactDestination } from '../dialog/contact-destination.js';
import { bindingTarget, freshestFlow } from './contact-target.js';
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
  /** Bindings by DN; an array, not a map by contact: a DN has one or a few, and there may be 100,000 DNs. */
  private readonly bindings = new Map<string, Binding[]>();
  /** Live bindings by the flow their REGISTER came on, so a closed flow costs O(its bindings). */
  private readonly byFlow = new Map<Flow, Binding[]>();
  /** What every registered flow calls when it closes (one object for all of them). */
  private readonly flowListener: FlowListener = { flowClosed: (flow) => this.flowClosed(flow) };
  private readonly expiryTimers = new Map<Binding, TimerHandle>();
  /** REGISTERs received since the last commit (group commit: see RegistrarOptions.defer). */
  private waiting: Waiting[] = [];
  /** The group being committed, while its REGISTERs are handled; undefined otherwise. */
  private group: Group | undefined;
  /** A group's commit to a shared store is under way: the next group waits for it. */
  private committing = false;

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
      else this.keep(this.loaded(stored));
    }
    if (stale.length > 0) this.persist(stale);
    for (const dn of this.bindings.keys()) this.directory.setState(dn, 'in-service', 'registration loaded');
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
    const old = this.bindings.get(aor) ?? [];
    for (const b of old) {
      this.unschedule(b);
      this.unindexFlow(b);
    }
    this.bindings.delete(aor);
    for (const row of rows) {
      const mine = old.find((o) => o.flow !== undefined && bindingKey(o) === bindingKey(row) && o.flowId === row.flowId && row.owner === this.store.shared?.instance);
      const b = this.loaded(row);
      if (mine?.flow !== undefined) {
        b.flow = mine.flow;
        b.flowId = mine.flow.id;
        b.flowState = mine.flowState;
      }
      this.keep(b);
    }
    const has = this.bindings.has(aor);
    this.directory.setState(aor, has ? 'in-service' : 'out-of-service', has ? 'registered (another instance)' : 'no registration');
  }

  /** The shared store is back after a loss: every binding from it, changes missed meanwhile included. */
  private resynced(all: Binding[]): void {
    const byAor = new Map<string, Binding[]>();
    for (const b of all) byAor.set(b.aor, [...(byAor.get(b.aor) ?? []), b]);
    for (const aor of new Set([...this.bindings.keys(), ...byAor.keys()])) this.replaced(aor, byAor.get(aor) ?? []);
    this.log.info({ bindings: all.length }, 'registrations re-read from the shared store');
  }

  stop(): void {
    this.commitWaiting();
    for (const t of this.expiryTimers.values()) t.cancel();
    this.expiryTimers.clear();
  }

  bindingsOf(dn: string): Binding[] {
    return [...(this.bindings.get(dn) ?? [])];
  }

  allBindings(): Binding[] {
    return [...this.bindings.values()].flat();
  }

  /**
   * Where requests to a DN go now: for a `*` DN its best binding (highest q, then the most
   * recently registered) on its live flow or at its Contact; for a fixed DN its contact.
   */
  targetOf(dn: string): CheckTarget | undefined {
    const entry = this.directory.get(dn);
    if (!entry) return undefined;
    if (entry.options.contact !== '*') {
      const destination = contactDestination(entry.options.contact, 'UDP');
      return destination && { requestUri: entry.options.contact, destination };
    }
    const bindings = this.bindingsOf(dn).sort((a, b) => (b.q ?? 1) - (a.q ?? 1) || b.registeredAt - a.registeredAt);
    const first = bindings[0];
    // RFC 5626 §7: one flow of an instance at a time, the freshest live one first.
    const best = first?.outbound ? freshestFlow(bindings.filter((b) => b.outbound && b.instanceId === first.instanceId)) : first;
    const destination = best && bindingTarget(best);
    if (!best || !destination) return undefined;
    const target: CheckTarget = { requestUri: best.contact, destination };
    if (best.path) target.route = best.path;
    if (best.outbound) {
      target.otherFlow = (dead) => this.otherFlow(best, dead);
      target.flowFailed = () => this.flowFailed(best);
    }
    return target;
  }

  /**
   * ★ Another live flow of the same phone (same AOR and instance) than `dead`, freshest
   * first, or undefined: where a request waiting on a dead flow of an outbound binding is
   * re-sent before any connection is re-opened (RFC 5626 §5.3: a phone behind NAT cannot be
   * reached at its Contact).
   */
  private otherFlow(of: Binding, dead: Flow): Destination | undefined {
    const others = this.bindingsOf(of.aor).filter((b) => b.outbound && b.instanceId === of.instanceId && b.flowState === 'live' && b.flow !== undefined && b.flow !== dead && b.flow.state === 'open');
    const next = freshestFlow(others);
    return next && bindingTarget(next);
  }

  /**
   * A 430 Flow Failed (RFC 5626 §7) for a request sent to `b` through an edge proxy: the
   * binding is removed (the phone re-registers on a new flow) and the next target of the same
   * instance, if any, is returned.
   */
  private flowFailed(b: Binding): CheckTarget | undefined {
    if (this.bindingOf(b.aor, bindingKey(b)) !== b) return this.targetOf(b.aor);
    this.log.info({ dn: b.aor, contact: b.contact, instance: b.instanceId, regId: b.regId }, '430 Flow Failed: binding removed');
    this.drop(b, 'removed');
    if (!this.bindings.has(b.aor)) this.directory.setState(b.aor, 'out-of-service', 'flow failed (430)');
    return this.targetOf(b.aor);
  }

  /** The DNs registered on `flow` while it lives. */
  dnsOnFlow(flow: Flow): string[] {
    return [...new Set((this.byFlow.get(flow) ?? []).map((b) => b.aor))];
  }

  /**
   * Whether a request from `source` comes from a phone registered as `dn`: it arrived on the
   * live connection a binding of `dn` registered on, or over the binding's transport from the
   * address and port it registered from or (unless natted) names in its Contact — UDP, or a
   * connection the server opened to the phone.
   */
  registeredAt(dn: string, source: { transport: string; address: string; port: number; flow?: Flow }): boolean {
    return (this.bindings.get(dn) ?? []).some((b) => {
      if (source.flow !== undefined && b.flow === source.flow && b.flowState === 'live') return true;
      if (b.transport !== source.transport) return false;
      if (b.source.address === source.address && b.source.port === source.port) return true;
      // A natted binding's Contact is known not to be where the phone is: it vouches for nobody.
      if (b.natted) return false;
      const at = contactDestination(b.contact, b.transport);
      return at !== undefined && at.address === source.address && at.port === source.port;
    });
  }

  /** `flow` is gone: bindings on it are reached at their Contact from now on. */
  private flowClosed(flow: Flow): void {
    const onFlow = this.byFlow.get(flow);
    if (!onFlow) return;
    this.byFlow.delete(flow);
    const flowId = flow.id;
    for (const b of onFlow) {
      // In memory only: a store write per closed connection would hold up the re-opens when
      // many connections die at once, and stored stream bindings are loaded as dead anyway.
      b.flowState = 'dead';
      this.log.info({ dn: b.aor, contact: b.contact, flowId }, 'registered flow closed');
    }
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
    pending
      .then(
        () => this.committed(group, answers),
        (err: unknown) => this.notStored(err, group, waiting, answers),
      )
      .finally(() => {
        this.committing = false;
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
      for (const b of this.bindings.get(dn) ?? []) {
        this.unschedule(b);
        this.unindexFlow(b);
      }
      this.bindings.delete(dn);
      for (const b of before) this.keep(b);
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
    this.announce(() => this.directory.setState(dn, this.bindings.has(dn) ? 'in-service' : 'out-of-service', this.bindings.has(dn) ? 'registered' : 'no registration'));
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
    if (old) this.unschedule(old);
    this.keep(b);
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

  /** The binding of `dn` with this key (bindingKey: its Contact, or its instance and reg-id). */
  private bindingOf(dn: string, key: string): Binding | undefined {
    return this.bindings.get(dn)?.find((x) => bindingKey(x) === key);
  }

  private keep(b: Binding): void {
    const list = this.bindings.get(b.aor);
    const key = bindingKey(b);
    const at = list ? list.findIndex((x) => bindingKey(x) === key) : -1;
    const replaced = list?.[at];
    if (replaced && replaced !== b) this.unindexFlow(replaced);
    if (!list) this.bindings.set(b.aor, [b]);
    else if (at >= 0) list[at] = b;
    else list.push(b);
    const flow = b.flow;
    if (flow !== undefined && b.flowState === 'live') {
      const onFlow = this.byFlow.get(flow);
      if (onFlow) {
        if (!onFlow.includes(b)) onFlow.push(b);
      } else if (flow.state === 'open') {
        this.byFlow.set(flow, [b]);
        flow.onClose(this.flowListener);
      } else {
        b.flowState = 'dead'; // it closed while the REGISTER was being handled
      }
    }
    this.expiryTimers.set(
      b,
      this.clock.setTimer(b.expiresAt - this.clock.now(), () => {
        this.drop(b, 'expired');
        if (!this.bindings.has(b.aor)) this.directory.setState(b.aor, 'out-of-service', 'registration expired');
      }),
    );
  }

  private drop(b: Binding, reason: 'removed' | 'expired'): void {
    this.unschedule(b);
    const list = this.bindings.get(b.aor);
    const at = list ? list.indexOf(b) : -1;
    if (!list || at < 0) return;
    list.splice(at, 1);
    if (list.length === 0) this.bindings.delete(b.aor);
    this.unindexFlow(b);
    this.write({ kind: 'remove', aor: b.aor, key: bindingKey(b) });
    const event = { dn: b.aor, contact: b.contact, reason, time: this.clock.now() };
    this.announce(() => this.events.emit('EventUnregistered', event));
  }

  private unindexFlow(b: Binding): void {
    const flow = b.flow;
    if (flow === undefined) return;
    const onFlow = this.byFlow.get(flow);
    const i = onFlow?.indexOf(b) ?? -1;
    if (!onFlow || i < 0) return;
    onFlow.splice(i, 1);
    if (onFlow.length > 0) return;
    this.byFlow.delete(flow);
    flow.offClose(this.flowListener);
  }

  private unschedule(b: Binding): void {
    this.expiryTimers.get(b)?.cancel();
    this.expiryTimers.delete(b);
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
