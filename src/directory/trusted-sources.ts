import { contactDestination } from '../dialog/contact-destination.js';
import { AddressSet } from '../util/address-set.js';
import type { Directory } from './directory.js';

/**
 * Who may start things without digest credentials ("authenticate or be trusted"): the
 * `sip-trusted-peers` CIDRs (loopback by default) and the hosts of trunk and voip-service
 * DNs' fixed contacts — the gateways and servers the operator configured. Host names in a
 * contact are not resolved: only an address there is trusted.
 */
export class TrustedSources {
  private readonly set: AddressSet;

  constructor(cidrs: readonly string[], directory: Directory) {
    this.set = new AddressSet(cidrs);
    for (const dn of directory.all()) {
      if (dn.options.type === 'extension' || dn.options.contact === '*') continue;
      const at = contactDestination(dn.options.contact, 'UDP');
      if (at) this.set.addAddress(at.address);
    }
  }

  has(address: string): boolean {
    return this.set.has(address);
  }
}
