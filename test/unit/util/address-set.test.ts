import { describe, expect, it } from 'vitest';
import { AddressSet, parseCidr } from '../../../src/util/address-set.js';

describe('AddressSet: trusted sources as CIDRs', () => {
  it('matches IPv4 and IPv6 subnets, single addresses, and IPv4-mapped IPv6 sources', () => {
    const set = new AddressSet(['127.0.0.0/8', '::1', '192.0.2.7', '2001:db8::/32']);
    expect(set.has('127.1.2.3')).toBe(true);
    expect(set.has('::ffff:127.0.0.1')).toBe(true);
    expect(set.has('::1')).toBe(true);
    expect(set.has('192.0.2.7')).toBe(true);
    expect(set.has('192.0.2.8')).toBe(false);
    expect(set.has('2001:db8:1::5')).toBe(true);
    expect(set.has('10.0.0.1')).toBe(false);
    expect(set.has('not-an-address')).toBe(false);
    set.addAddress('198.51.100.1');
    expect(set.has('198.51.100.1')).toBe(true);
  });

  it('answers the same when asked again (its answers are remembered): after an address is added, and past the memory\'s size', () => {
    const set = new AddressSet(['10.0.0.0/8']);
    expect(set.has('198.51.100.1')).toBe(false);
    set.addAddress('198.51.100.1');
    expect(set.has('198.51.100.1')).toBe(true);
    for (let i = 0; i < 5000; i++) expect(set.has(`10.0.${i >> 8}.${i & 255}`)).toBe(true);
    for (let i = 0; i < 5000; i++) expect(set.has(`192.0.${i >> 8}.${i & 255}`)).toBe(false);
    expect(set.has('::ffff:10.1.2.3')).toBe(true);
    expect(set.has('198.51.100.1')).toBe(true);
  });

  it('parses only well-formed CIDRs', () => {
    expect(parseCidr('10.0.0.0/8')).toEqual({ address: '10.0.0.0', bits: 8, family: 'ipv4' });
    expect(parseCidr('::1')).toEqual({ address: '::1', bits: 128, family: 'ipv6' });
    for (const bad of ['10.0.0.0/33', '10.0.0/8', 'host.example', '10.0.0.0/8/1', '::1/129', '10.0.0.0/x']) expect(parseCidr(bad)).toBeUndefined();
    expect(() => new AddressSet(['nonsense'])).toThrow(/not a CIDR/);
  });
});
