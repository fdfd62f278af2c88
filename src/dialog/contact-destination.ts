import { isSipUri, parseUri } from '../sip/uri.js';
import type { Destination, TransportName } from '../transport/types.js';

/**
 * The transport address a SIP URI names (RFC 3263 defaults without SRV/NAPTR lookups): the
 * `transport` parameter, TLS for sips:, else `fallback`; the port, else 5060 (5061 for TLS).
 * Undefined for a URI that is not sip:/sips: or does not parse.
 */
export function contactDestination(contact: string, fallback: TransportName): Destination | undefined {
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
