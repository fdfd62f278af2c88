import { SipParseError } from '../util/errors.js';
import { contactDestination } from '../dialog/contact-destination.js';
import type { Directory } from '../directory/directory.js';
import type { Registrar } from '../registrar/registrar.js';
import { isSipUri, parseUri } from '../sip/uri.js';
import type { Source } from '../transport/types.js';

/** Who placed a call, as far as the server knows it. */
export interface CallerIdentity {
  /**
   * The caller's DN: only one the server can vouch for (SPEC §9) — a registration the request
   * arrived on or came from, or a fixed contact's address. Null when it is none of them: a
   * From header alone never names a DN.
   */
  dn: string | null;
  /**
   * The number presented to the callee (the user part of the outgoing From): the DN for an
   * extension, the number the caller gave when it came through a trunk or is unknown.
   */
  presented: string;
}

/**
 * Finds the DN of the party that sent a request from `source`, given `claimed` (the user part
 * of its From, if any): the claimed DN when a registration of it is on that flow or at that
 * address; else the DN registered on the connection it came on (a phone that follows a REFER
 * may put any URI in From); else the DN whose fixed contact names that address and port, or
 * that address without a port (a gateway that sends from other ports than it listens on).
 */
export class CallerIdentifier {
  /** DNs with a fixed contact and its address (the directory does not change at run time). */
  private readonly fixed: { number: string; trunk: boolean; address: string; port: number | undefined }[];

  constructor(
    private readonly directory: Directory,
    private readonly registrar: Pick<Registrar, 'registeredAt' | 'dnsOnFlow'>,
  ) {
    this.fixed = directory
      .all()
      .filter((d) => d.options.contact !== '*')
      .flatMap((d) => {
        const at = contactDestination(d.options.contact, 'UDP');
        // A contact without a port stands for the host: its requests may come from any port.
        const port = explicitPort(d.options.contact) ? at?.port : undefined;
        return at ? [{ number: d.number, trunk: d.options.type === 'trunk', address: at.address, port }] : [];
      });
  }

  identify(claimed: string | undefined, source: Source): CallerIdentity {
    // A claim to be one of this server's DNs that the source does not bear out is not passed
    // on either: the callee would see an internal number nobody vouched for.
    const presented = claimed === undefined || this.directory.get(claimed) ? 'anonymous' : claimed;
    if (claimed !== undefined && this.directory.get(claimed)?.options.contact === '*' && this.registrar.registeredAt(claimed, source)) {
      return { dn: claimed, presented: claimed };
    }
    if (source.flow !== undefined) {
      const onFlow = this.registrar.dnsOnFlow(source.flow);
      const only = onFlow.length === 1 ? onFlow[0] : undefined;
      if (only !== undefined) return { dn: only, presented: only };
    }
    const candidates = this.fixed.filter((d) => d.address === source.address && (d.port === undefined || d.port === source.port));
    const found = candidates.length === 1 ? candidates[0] : candidates.find((d) => d.number === claimed);
    if (!found) return { dn: null, presented };
    // A trunk passes its caller's number on; an extension or service at a fixed contact is its DN.
    return { dn: found.number, presented: found.trunk ? presented : found.number };
  }
}

function explicitPort(contact: string): boolean {
  try {
    const uri = parseUri(contact);
    return isSipUri(uri) && uri.port !== undefined;
  } catch (err) {
    if (err instanceof SipParseError) return false;
    throw err;
  }
}
