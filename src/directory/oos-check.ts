import { SIP_VERSION, type SipRequest } from '../sip/message.js';
import { aorUri } from '../sip/uri.js';
import type { TransactionLayer } from '../transaction/transaction-layer.js';
import type { Flow } from '../transport/flow.js';
import type { Destination } from '../transport/types.js';
import type { Clock, TimerHandle } from '../util/clock.js';
import { newCallId, newTag } from '../util/ids.js';
import type { Logger } from '../util/logger.js';
import type { Directory } from './directory.js';

/** Where to send a request to a DN (its OPTIONS, a call): its registered flow or contact, chosen by the registrar. */
export interface CheckTarget {
  requestUri: string;
  destination: Destination;
  /** Route headers, in order: the Path the phone registered through (RFC 3327). */
  route?: string[];
  /** ★ An outbound phone's other live flow, when `dead` (the one a request went on) dies. */
  otherFlow?: (dead: Flow) => Destination | undefined;
  /** A 430 Flow Failed came back (RFC 5626 §7): the flow is dropped; the next one of the phone, if any. */
  flowFailed?: () => CheckTarget | undefined;
}

export interface OosCheckDeps {
  directory: Directory;
  transactions: TransactionLayer;
  clock: Clock;
  log: Logger;
  /** The server's own SIP address, for From and Call-ID. */
  localAddress: string;
  /** The DN's current target, or undefined when it has none (an unregistered `*` DN). */
  targetOf(dn: string): CheckTarget | undefined;
  /**
   * A DN without `oos-check` that went out of service while it still has a target (a request
   * to it timed out) is sent OPTIONS this often until it answers; 0 = it waits for its next
   * registration (sip-oos-recovery-interval).
   */
  recoveryMs?: number;
}

interface DnCheck {
  timer: TimerHandle | undefined;
  forceTimer: TimerHandle | undefined;
  /** The OPTIONS still awaited, if any; no longer awaited once `oos-force` has run out. */
  pending: object | undefined;
}

/**
 * The active out-of-service check (SPEC §4): every `oos-check` seconds an OPTIONS goes to
 * each DN that has the option. Any SIP response, even an error, counts as alive and brings
 * the DN back in service; no response within `oos-force` seconds (0: the transaction's own
 * timeout, 32 s by default), or a transport failure, puts it out of service. The check goes
 * on either way. A check is not sent while the previous one to that DN is still pending.
 */
export class OosChecker {
  private readonly checks = new Map<string, DnCheck>();
  /** Out-of-service DNs without oos-check being probed until they answer. */
  private readonly recovering = new Map<string, DnCheck>();
  private readonly offs: (() => void)[] = [];
  private cseq = 1;

  constructor(private readonly deps: OosCheckDeps) {}

  start(): void {
    const recoveryMs = this.deps.recoveryMs ?? 0;
    if (recoveryMs > 0) {
      this.offs.push(
        this.deps.directory.events.on('EventDNOutOfService', (e) => this.recover(e.dn, recoveryMs)),
        this.deps.directory.events.on('EventDNBackInService', (e) => this.endRecovery(e.dn)),
      );
    }
    for (const dn of this.deps.directory.all()) {
      if (dn.options['oos-check'] > 0) {
        const check: DnCheck = { timer: undefined, forceTimer: undefined, pending: undefined };
        this.checks.set(dn.number, check);
        this.schedule(dn.number, check, dn.options['oos-check'] * 1000);
      }
    }
  }

  stop(): void {
    for (const off of this.offs.splice(0)) off();
    for (const c of [...this.checks.values(), ...this.recovering.values()]) {
      c.timer?.cancel();
      c.forceTimer?.cancel();
    }
    this.checks.clear();
    this.recovering.clear();
  }

  /**
   * One timeout (a phone that missed one INVITE in a burst of traffic) must not keep a DN out
   * of service until its next registration, minutes later: while it still has a registration
   * (or a fixed contact) it is asked with OPTIONS every `everyMs` until it answers.
   */
  private recover(dn: string, everyMs: number): void {
    const entry = this.deps.directory.get(dn);
    if (!entry || entry.options['oos-check'] > 0 || this.recovering.has(dn) || !this.deps.targetOf(dn)) return;
    const check: DnCheck = { timer: undefined, forceTimer: undefined, pending: undefined };
    this.recovering.set(dn, check);
    const tick = (): void => {
      check.timer = this.deps.clock.setTimer(everyMs, () => {
        if (this.recovering.get(dn) !== check) return;
        if (!this.deps.targetOf(dn) || this.deps.directory.get(dn)?.state === 'in-service') {
          this.endRecovery(dn);
          return;
        }
        this.probe(dn, check);
        tick();
      });
    };
    tick();
  }

  private endRecovery(dn: string): void {
    const check = this.recovering.get(dn);
    if (!check) return;
    this.recovering.delete(dn);
    check.timer?.cancel();
    check.forceTimer?.cancel();
  }

  private schedule(dn: string, check: DnCheck, everyMs: number): void {
    check.timer = this.deps.clock.setTimer(everyMs, () => {
      this.probe(dn, check);
      this.schedule(dn, check, everyMs);
    });
  }

  private probe(dn: string, check: DnCheck): void {
    const entry = this.deps.directory.get(dn);
    const target = this.deps.targetOf(dn);
    if (!entry || !target || check.pending) return;
    const probe = {};
    check.pending = probe;
    const force = entry.options['oos-force'];
    if (force > 0) {
      check.forceTimer = this.deps.clock.setTimer(force * 1000, () => {
        check.forceTimer = undefined;
        // Given up on: the check goes on with the next OPTIONS on schedule (a late answer still counts).
        check.pending = undefined;
        this.deps.directory.setState(dn, 'out-of-service', `no response to OPTIONS within ${force} s`);
      });
    }
    /** True when this probe was still awaited; from now on it is not. */
    const settle = (): boolean => {
      if (check.pending !== probe) return false;
      check.pending = undefined;
      check.forceTimer?.cancel();
      check.forceTimer = undefined;
      return true;
    };
    try {
      this.deps.transactions.sendRequest(this.options(dn, target), target.destination, {
        ...(target.otherFlow ? { otherFlow: target.otherFlow } : {}),
        onFinal: (res, info) => {
          const awaited = settle();
          if (info.local === false) {
            // Any answer, even a late one, shows the DN alive; but a `*` DN whose last
            // registration went while the OPTIONS was out stays out of service (SPEC §4).
            if (this.deps.targetOf(dn)) this.deps.directory.setState(dn, 'in-service', `OPTIONS answered ${res.status}`);
            return;
          }
          // A probe given up on after oos-force has already counted; its own end must not undo a newer answer.
          if (!awaited) return;
          const reason = info.local === 'timeout' ? 'OPTIONS timed out' : `transport error: ${info.cause.code}`;
          this.deps.directory.setState(dn, 'out-of-service', reason);
        },
      });
    } catch (err) {
      settle();
      this.deps.log.error({ err, dn }, 'could not send the OOS check');
    }
  }

  private options(dn: string, target: CheckTarget): SipRequest {
    const host = this.deps.localAddress;
    // A registered DN is addressed by its AOR; its Contact is only the Request-URI (SPEC §10).
    const to = this.deps.directory.get(dn)?.options.contact === '*' ? aorUri(dn, host) : target.requestUri;
    return {
      kind: 'request',
      method: 'OPTIONS',
      uri: target.requestUri,
      version: SIP_VERSION,
      headers: [
        { name: 'Max-Forwards', value: '70' },
        ...(target.route ?? []).map((value) => ({ name: 'Route', value })),
        { name: 'From', value: `<sip:oos-check@${host}>;tag=${newTag()}` },
        { name: 'To', value: `<${to}>` },
        { name: 'Call-ID', value: newCallId(host) },
        { name: 'CSeq', value: `${this.cseq++ % 2 ** 31} OPTIONS` },
      ],
      body: Buffer.alloc(0),
    };
  }
}
