import type { Directory } from '../directory/directory.js';
import type { CheckTarget } from '../directory/oos-check.js';
import type { Registrar } from '../registrar/registrar.js';
import { contactDestination } from '../dialog/contact-destination.js';
import { isSipUri, parseUri } from '../sip/uri.js';

/** One place a call may go: the DN and how to reach it. */
export interface RouteTarget extends CheckTarget {
  dn: string;
  type: 'extension' | 'trunk' | 'voip-service';
}

export type RouteResult = { kind: 'targets'; targets: RouteTarget[] } | { kind: 'reject'; status: number; reason: string };

/**
 * SPEC §6 routing of a dialled number: an extension (or voip-service) named by it → its
 * registered flow or fixed contact (480 while out of service or unregistered); else every
 * trunk whose `prefix` starts it, longest prefix first, then smaller `priority`, skipping
 * out-of-service trunks (the caller fails over along the list); else 404.
 */
export class Router {
  constructor(
    private readonly directory: Directory,
    private readonly registrar: Registrar,
  ) {}

  route(number: string): RouteResult {
    const dn = this.directory.get(number);
    if (dn && dn.options.type !== 'trunk') {
      if (dn.state === 'out-of-service') return { kind: 'reject', status: 480, reason: `DN ${number} Out of Service` };
      const target = this.registrar.targetOf(number);
      if (!target) return { kind: 'reject', status: 480, reason: `DN ${number} Not Registered` };
      return { kind: 'targets', targets: [{ ...target, dn: number, type: dn.options.type }] };
    }
    const trunks = this.directory
      .all()
      .filter((d) => d.options.type === 'trunk' && d.options.prefix !== undefined && number.startsWith(d.options.prefix))
      .sort((a, b) => (b.options.prefix?.length ?? 0) - (a.options.prefix?.length ?? 0) || a.options.priority - b.options.priority);
    if (trunks.length === 0) return { kind: 'reject', status: 404, reason: `No Route to ${number}` };
    const targets: RouteTarget[] = [];
    for (const t of trunks) {
      if (t.state === 'out-of-service') continue;
      const requestUri = trunkRequestUri(number, t.options.contact);
      const destination = requestUri && contactDestination(t.options.contact, 'UDP');
      if (requestUri && destination) targets.push({ dn: t.number, type: 'trunk', requestUri, destination });
    }
    if (targets.length === 0) return { kind: 'reject', status: 480, reason: `Every Trunk for ${number} Is Out of Service` };
    return { kind: 'targets', targets };
  }
}

/** The dialled number at the trunk's host: sip:NUMBER@host:port;params of the trunk contact. */
function trunkRequestUri(number: string, contact: string): string | undefined {
  const uri = parseUri(contact);
  if (!isSipUri(uri)) return undefined;
  const port = uri.port === undefined ? '' : `:${uri.port}`;
  let params = '';
  for (const [k, v] of uri.params) params += v === null ? `;${k}` : `;${k}=${v}`;
  return `${uri.scheme}:${number}@${uri.host}${port}${params}`;
}
