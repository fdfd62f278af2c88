import { BlockList, isIP } from 'node:net';
import { Memo } from './memo.js';

/**
 * A set of IP addresses given as CIDRs ("192.0.2.0/24", "::1", "10.0.0.7"), for "is this
 * source one of ours": IPv4-mapped IPv6 sources (::ffff:192.0.2.1) match their IPv4 form.
 */
export class AddressSet {
  private readonly list = new BlockList();
  private readonly extra = new Set<string>();
  /**
   * Answers already worked out, by the address as asked: the check runs for every datagram
   * (per-source limits exempt trusted peers), and BlockList.check builds a SocketAddress each
   * time (~3 % of the CPU at 600 calls/s).
   */
  private readonly memo = new Memo<boolean>(4096);

  constructor(cidrs: readonly string[]) {
    for (const cidr of cidrs) {
      const parsed = parseCidr(cidr);
      if (!parsed) throw new Error(`"${cidr}" is not a CIDR`);
      this.list.addSubnet(parsed.address, parsed.bits, parsed.family);
    }
  }

  /** Adds single addresses (e.g. the hosts of fixed contacts). */
  addAddress(address: string): void {
    this.extra.add(plain(address));
    this.memo.clear();
  }

  has(address: string): boolean {
    return this.memo.get(address, this.lookup);
  }

  private readonly lookup = (address: string): boolean => {
    const a = plain(address);
    const family = isIP(a);
    if (family === 0) return false;
    return this.extra.has(a) || this.list.check(a, family === 6 ? 'ipv6' : 'ipv4');
  };
}

/** "ADDRESS" or "ADDRESS/BITS" with BITS within the family's width; undefined when it is not one. */
export function parseCidr(text: string): { address: string; bits: number; family: 'ipv4' | 'ipv6' } | undefined {
  const [address = '', bitsText, more] = text.trim().split('/');
  if (more !== undefined) return undefined;
  const family = isIP(address);
  if (family === 0) return undefined;
  const max = family === 6 ? 128 : 32;
  if (bitsText !== undefined && !/^\d{1,3}$/.test(bitsText)) return undefined;
  const bits = bitsText === undefined ? max : Number(bitsText);
  if (bits > max) return undefined;
  return { address, bits, family: family === 6 ? 'ipv6' : 'ipv4' };
}

function plain(address: string): string {
  const a = address.startsWith('[') && address.endsWith(']') ? address.slice(1, -1) : address;
  return a.toLowerCase().startsWith('::ffff:') && isIP(a.slice(7)) === 4 ? a.slice(7) : a;
}
