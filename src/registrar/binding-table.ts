import type { Flow, FlowListener } from '../transport/flow.js';
import type { Clock, TimerHandle } from '../util/clock.js';
import type { Logger } from '../util/logger.js';
import { bindingKey, type Binding } from './binding.js';

/**
 * The registrar's bindings in memory: by DN (an array each, not a map by contact: a DN has
 * one or a few, and there may be 100,000 DNs), the live ones by the flow their REGISTER came
 * on (so a closed flow costs O(its bindings)), and an expiry timer each on the Clock. Knows
 * nothing of the store or of events: `expired` is told when a binding's time is up.
 */
export class BindingTable {
  private readonly byDn = new Map<string, Binding[]>();
  private readonly byFlow = new Map<Flow, Binding[]>();
  /** What every registered flow calls when it closes (one object for all of them). */
  private readonly flowListener: FlowListener = { flowClosed: (flow) => this.flowClosed(flow) };
  private readonly expiryTimers = new Map<Binding, TimerHandle>();

  constructor(
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly expired: (b: Binding) => void,
  ) {}

  /** A copy of the DN's bindings. */
  of(dn: string): Binding[] {
    return [...(this.byDn.get(dn) ?? [])];
  }

  all(): Binding[] {
    return [...this.byDn.values()].flat();
  }

  dns(): string[] {
    return [...this.byDn.keys()];
  }

  has(dn: string): boolean {
    return this.byDn.has(dn);
  }

  /** The binding of `dn` with this key (bindingKey: its Contact, or its instance and reg-id). */
  find(dn: string, key: string): Binding | undefined {
    return this.byDn.get(dn)?.find((x) => bindingKey(x) === key);
  }

  /** Whether some binding of `dn` satisfies `test` (no copy). */
  some(dn: string, test: (b: Binding) => boolean): boolean {
    return (this.byDn.get(dn) ?? []).some(test);
  }

  /** The live bindings on `flow`. */
  onFlow(flow: Flow): readonly Binding[] {
    return this.byFlow.get(flow) ?? [];
  }

  /** Adds `b`, or puts it in the place of the binding with its key; follows its flow; arms its expiry. */
  keep(b: Binding): void {
    const list = this.byDn.get(b.aor);
    const key = bindingKey(b);
    const at = list ? list.findIndex((x) => bindingKey(x) === key) : -1;
    const replaced = list?.[at];
    if (replaced && replaced !== b) {
      this.unindexFlow(replaced);
      this.unschedule(replaced);
    }
    if (!list) this.byDn.set(b.aor, [b]);
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
    this.unschedule(b);
    this.expiryTimers.set(
      b,
      this.clock.setTimer(b.expiresAt - this.clock.now(), () => this.expired(b)),
    );
  }

  /** Removes `b` (its timer and flow too); false when it was not here. */
  remove(b: Binding): boolean {
    this.unschedule(b);
    const list = this.byDn.get(b.aor);
    const at = list ? list.indexOf(b) : -1;
    if (!list || at < 0) return false;
    list.splice(at, 1);
    if (list.length === 0) this.byDn.delete(b.aor);
    this.unindexFlow(b);
    return true;
  }

  /** Removes every binding of `dn` without a trace (to put others in their place); returns them. */
  clear(dn: string): Binding[] {
    const old = this.byDn.get(dn) ?? [];
    for (const b of old) {
      this.unschedule(b);
      this.unindexFlow(b);
    }
    this.byDn.delete(dn);
    return old;
  }

  stop(): void {
    for (const t of this.expiryTimers.values()) t.cancel();
    this.expiryTimers.clear();
  }

  /** `flow` is gone: bindings on it are reached at their Contact (or Path) from now on. */
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
