import { contactDestination } from '../dialog/contact-destination.js';
import type { Destination } from '../transport/types.js';
import type { Binding } from './binding.js';
import { parseNameAddr } from '../sip/name-addr.js';

/**
 * Where a request to a binding goes. Behind an edge proxy (a Path, RFC 3327): to the first
 * Path entry, the Path being the request's route set — on the connection the REGISTER came
 * on while it lives, else at that entry's address (its transport parameter, or the
 * REGISTER's). Otherwise: its registered flow while that is live (a phone behind a firewall
 * can only be reached on the connection it opened); once the flow is gone, the address in its
 * Contact (its listening port, not the ephemeral port it connected from, SPEC §5) with the
 * Contact's transport parameter, or the transport it registered over. UDP bindings are
 * reached at their Contact (RFC 3261 §10).
 */
export function bindingTarget(b: Binding): Destination | undefined {
  const hop = b.path?.[0];
  const named = hop !== undefined ? pathDestination(hop, b) : contactDestination(b.contact, b.transport);
  // NAT (or a Contact naming another host) from an untrusted source: where the REGISTER came
  // from — over UDP its very port (the NAT's mapping), over a stream the Contact's port there.
  const contact = named && b.natted ? { ...named, address: b.source.address, ...(b.transport === 'UDP' ? { port: b.source.port } : {}) } : named;
  if (b.flowState === 'live' && b.flow !== undefined) {
    const at = contact ?? { address: b.source.address, port: b.source.port };
    return { transport: b.transport, address: at.address, port: at.port, flow: b.flow };
  }
  return contact;
}

/** The freshest of some flows of one instance: live ones first, then the most recently refreshed. */
export function freshestFlow(flows: Binding[]): Binding | undefined {
  const live = (b: Binding): number => (b.flowState === 'live' && (b.flow === undefined || b.flow.state === 'open') ? 1 : 0);
  return [...flows].sort((a, b) => live(b) - live(a) || (b.updatedAt ?? b.registeredAt) - (a.updatedAt ?? a.registeredAt))[0];
}

/** The first Path entry's address; its transport parameter, else the REGISTER's transport. */
function pathDestination(hop: string, b: Binding): Destination | undefined {
  try {
    return contactDestination(parseNameAddr(hop, 'Path').uri, b.transport);
  } catch {
    return undefined;
  }
}
