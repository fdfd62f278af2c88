import { getHeaderValues, type SipRequest } from '../sip/message.js';
import { isSipUri } from '../sip/uri.js';
import { optionTags, Refusal, uriOf, type ContactRequest } from './contact-request.js';

/** How a REGISTER reached the registrar, and whether RFC 5626 outbound processing applies to it. */
export interface RegisterPath {
  /** Its Path values (RFC 3327), topmost first; empty when it came straight from the phone. */
  path: string[];
  /** The phone is directly connected: one Via and no Path (the registrar is its edge). */
  firstHop: boolean;
  /** Outbound processing applies: its reg-id bindings are flows of their instance (RFC 5626 §6). */
  outbound: boolean;
  /** The phone said `Supported: path`: the 200 echoes the Path (RFC 3327 §5.3). */
  echoPath: boolean;
}

/**
 * RFC 5626 §6 for one REGISTER. Outbound processing applies when a Contact has both
 * `+sip.instance` and `reg-id`, and the first hop supports outbound: the registrar itself
 * (the phone is directly connected) or an edge proxy whose Path entry carries `;ob`. The
 * edge proxy's entry is the last Path value, the one nearest the phone (with one proxy, its
 * only one). When the first hop lacks it: `439 First Hop Lacks Outbound Support` if the phone
 * said `Supported: outbound`, otherwise reg-id is ignored. A REGISTER that would make more
 * than one binding while one of them has a reg-id is a 400 (one REGISTER, one flow).
 * Throws Refusal; the Path entries must be SIP URIs (400 otherwise).
 */
export function registerPath(req: SipRequest, contacts: ContactRequest[] | '*'): RegisterPath {
  const path = getHeaderValues(req, 'path').map((v) => v.trim());
  for (const p of path) {
    if (!isSipUri(uriOf(p, 'Path'))) throw new Refusal(400, 'Path Must Be SIP URIs');
  }
  const firstHop = path.length === 0 && getHeaderValues(req, 'via').length === 1;
  const supported = optionTags(req, 'supported');
  const echoPath = supported.includes('path');
  const flows = contacts === '*' ? [] : contacts.filter((c) => c.regId !== undefined);
  if (flows.length === 0) return { path, firstHop, outbound: false, echoPath };
  const outboundTagged = supported.includes('outbound') || optionTags(req, 'require').includes('outbound');
  const edge = path[path.length - 1];
  const edgeUri = edge === undefined ? undefined : uriOf(edge, 'Path');
  const edgeSupports = firstHop || (edgeUri !== undefined && isSipUri(edgeUri) && edgeUri.params.has('ob'));
  if (!edgeSupports) {
    if (outboundTagged) throw new Refusal(439, 'First Hop Lacks Outbound Support');
    return { path, firstHop, outbound: false, echoPath };
  }
  if (contacts !== '*' && contacts.filter((c) => c.expiresS > 0).length > 1 && flows.some((c) => c.expiresS > 0)) {
    throw new Refusal(400, 'One Flow per REGISTER: Several Contacts With reg-id');
  }
  return { path, firstHop, outbound: true, echoPath };
}
