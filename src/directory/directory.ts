import type { DnOptions } from '../config/schema.js';
import type { Clock } from '../util/clock.js';
import type { Logger } from '../util/logger.js';
import { TypedEvents } from '../util/typed-events.js';
import type { Dn, DnState } from './dn.js';

export interface DnStateEvent {
  dn: string;
  type: DnOptions['type'];
  reason: string;
  time: number;
}

export interface DirectoryEvents extends Record<string, unknown> {
  EventDNOutOfService: DnStateEvent;
  EventDNBackInService: DnStateEvent;
}

/**
 * The directory of DNs (SPEC §3.2, §4). `setState` is the one place a DN changes state, and
 * every change emits EventDNOutOfService or EventDNBackInService; setting the state a DN
 * already has changes nothing and emits nothing.
 *
 * Initial states: a DN with `contact: "*"` is out of service until it registers; a DN with a
 * fixed contact is in service until a request or an OPTIONS check to it fails.
 */
export class Directory {
  readonly events: TypedEvents<DirectoryEvents>;
  private readonly dns = new Map<string, Dn>();

  constructor(
    config: Record<string, DnOptions>,
    private readonly clock: Clock,
    private readonly log: Logger,
  ) {
    this.events = new TypedEvents<DirectoryEvents>((err, name) => log.error({ err, event: name }, 'directory listener failed'));
    const now = clock.now();
    for (const [number, options] of Object.entries(config)) {
      const registers = options.contact === '*';
      this.dns.set(number, {
        number,
        options,
        state: registers ? 'out-of-service' : 'in-service',
        reason: registers ? 'not registered' : 'fixed contact',
        since: now,
      });
    }
  }

  get(number: string): Dn | undefined {
    return this.dns.get(number);
  }

  all(): Dn[] {
    return [...this.dns.values()];
  }

  /** Moves a DN to `state`; returns true when that was a change (and an event was emitted). */
  setState(number: string, state: DnState, reason: string): boolean {
    const dn = this.dns.get(number);
    if (!dn || dn.state === state) return false;
    dn.state = state;
    dn.reason = reason;
    dn.since = this.clock.now();
    const event: DnStateEvent = { dn: number, type: dn.options.type, reason, time: dn.since };
    this.log.info({ dn: number, state, reason }, 'DN state changed');
    this.events.emit(state === 'in-service' ? 'EventDNBackInService' : 'EventDNOutOfService', event);
    return true;
  }

  /** Counts by state, for metrics. */
  countByState(): Record<DnState, number> {
    const out: Record<DnState, number> = { 'in-service': 0, 'out-of-service': 0 };
    for (const dn of this.dns.values()) out[dn.state]++;
    return out;
  }
}
