import { contactDestination } from '../dialog/contact-destination.js';
import type { Destination } from '../transport/types.js';
import type { Binding } from './binding.js';

/**
 * Where a request to a binding goes: its registered flow while that is live (a phone behind
 * a firewall can only be reached on the connection it opened); once the flow is gone, the
 * address in its Contact (its listening port, not the ephemeral port it connected from, SPEC
 * §5) with the Contact's transport parameter, or the transport it registered over. UDP
 * bindings are reached at their Contact (RFC 3261 §10).
 */
export function bindingTarget(b: Binding): Destination | undefined {
  const named = contactDestination(b.contact, b.transport);
  // NAT (or a Contact naming another host) from an untrusted source: where the REGISTER came
  // from — over UDP its very port (the NAT's mapping), over a stream the Contact's port there.
  const contact = named && b.natted ? { ...named, address: b.source.address, ...(b.transport === 'UDP' ? { port: b.source.port } : {}) } : named;
  if (b.flowState === 'live' && b.flow !== undefined) {
    const at = contact ?? { address: b.source.address, port: b.source.port };
    return { transport: b.transport, address: at.address, port: at.port, flow: b.flow };
  }
  return contact;
}
