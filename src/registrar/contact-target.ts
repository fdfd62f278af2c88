import { isSipUri, parseUri } from '../sip/uri.js';
import type { Destination, TransportName } from '../transport/types.js';
import type { Binding } from './binding.js';

/**
 * Where a request to a binding goes: its registered flow while that is live (a phone behind
 * a firewall can only be reached on the connection it opened), else the address in its
 * Contact with the Contact's transport parameter, or the transport it registered over.
 */
export function bindingTarget(b: Binding): Destination | undefined {
  if (b.flowState === 'live' && b.flowId !== undefined) {
    return { transport: b.transport, address: b.source.address, port: b.source.port, flowId: b.flowId };
  }
  if (b.transport === 'UDP' && b.flowState === 'live') {
    // UDP has no flow: answer the NAT binding the REGISTER came from.
    return { transport: 'UDP', address: b.source.address, port: b.source.port };
  }
  return contactTarget(b.contact, b.transport);
}

/** The transport address a SIP URI names (RFC 3263 defaults, no SRV/NAPTR lookups). */
export function contactTarget(contact: string, fallback: TransportName): Destination | undefined {
  let uri;
  try {
    uri = parseUri(contact);
  } catch {
    return undefined;
  }
  if (!isSipUri(uri)) return undefined;
  const param = uri.params.get('transport')?.toUpperCase();
  const transport: TransportName = uri.scheme === 'sips' ? 'TLS' : param === 'TCP' || param === 'TLS' || param === 'UDP' ? param : fallback;
  const host = uri.host.startsWith('[') ? uri.host.slice(1, -1) : uri.host;
  return { transport, address: host, port: uri.port ?? (transport === 'TLS' ? 5061 : 5060) };
}
