import { contactDestination } from '../dialog/contact-destination.js';
import type { Directory } from '../directory/directory.js';
import type { CheckTarget } from '../directory/oos-check.js';
import type { Flow } from '../transport/flow.js';
import type { Destination } from '../transport/types.js';
import { bindingKey, type Binding } from './binding.js';
import type { BindingTable } from './binding-table.js';
import { bindingTarget, freshestFlow } from './contact-target.js';

/**
 * Where requests to a DN go, and who may speak for it, from the registrar's bindings: the
 * best binding (highest q, then the most recently registered; for an RFC 5626 phone its
 * freshest live flow), its Path as route set, and for an outbound phone its other flows.
 */
export class BindingTargets {
  constructor(
    private readonly table: BindingTable,
    private readonly directory: Directory,
    /** A 430 Flow Failed came back for a request to `b`: the registrar removes it. */
    private readonly failed: (b: Binding) => void,
  ) {}

  /**
   * For a `*` DN its best binding on its live flow, at its Contact or through its Path; for
   * a fixed DN its contact.
   */
  targetOf(dn: string): CheckTarget | undefined {
    const entry = this.directory.get(dn);
    if (!entry) return undefined;
    if (entry.options.contact !== '*') {
      const destination = contactDestination(entry.options.contact, 'UDP');
      return destination && { requestUri: entry.options.contact, destination };
    }
    const bindings = this.table.of(dn).sort((a, b) => (b.q ?? 1) - (a.q ?? 1) || b.registeredAt - a.registeredAt);
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
   * Whether a request from `source` comes from a phone registered as `dn`: it arrived on the
   * live connection a binding of `dn` registered on, or over the binding's transport from the
   * address and port it registered from or (unless natted) names in its Contact — UDP, or a
   * connection the server opened to the phone.
   */
  registeredAt(dn: string, source: { transport: string; address: string; port: number; flow?: Flow }): boolean {
    return this.table.some(dn, (b) => {
      if (source.flow !== undefined && b.flow === source.flow && b.flowState === 'live') return true;
      if (b.transport !== source.transport) return false;
      if (b.source.address === source.address && b.source.port === source.port) return true;
      // A natted binding's Contact is known not to be where the phone is: it vouches for nobody.
      if (b.natted) return false;
      const at = contactDestination(b.contact, b.transport);
      return at !== undefined && at.address === source.address && at.port === source.port;
    });
  }

  /**
   * ★ Another live flow of the same phone (same AOR and instance) than `dead`, freshest
   * first, or undefined: where a request waiting on a dead flow of an outbound binding is
   * re-sent before any connection is re-opened (RFC 5626 §5.3: a phone behind NAT cannot be
   * reached at its Contact).
   */
  private otherFlow(of: Binding, dead: Flow): Destination | undefined {
    const others = this.table
      .of(of.aor)
      .filter((b) => b.outbound && b.instanceId === of.instanceId && b.flowState === 'live' && b.flow !== undefined && b.flow !== dead && b.flow.state === 'open');
    const next = freshestFlow(others);
    return next && bindingTarget(next);
  }

  /** RFC 5626 §7: the flow `b` failed (430 from the edge): it goes, and the phone's next flow, if any, is the target. */
  private flowFailed(b: Binding): CheckTarget | undefined {
    if (this.table.find(b.aor, bindingKey(b)) === b) this.failed(b);
    return this.targetOf(b.aor);
  }
}
