import { describe, expect, it } from 'vitest';
import { CallerIdentifier } from '../../../src/calls/caller-identity.js';
import { Directory } from '../../../src/directory/directory.js';
import type { Flow } from '../../../src/transport/flow.js';
import type { Source } from '../../../src/transport/types.js';
import { FakeFlow } from '../../support/fake-transport.js';
import { silentLogger } from '../../../src/util/logger.js';
import { ManualClock } from '../../support/manual-clock.js';
import { dn } from '../registrar/harness.js';

/** 1001 is registered over UDP from 192.0.2.1:5062 and 1002 on TCP flow "tcp:7"; the rest have fixed contacts. */
function identifier(): CallerIdentifier {
  const directory = new Directory(
    {
      '1001': dn({ type: 'extension', contact: '*' }),
      '1002': dn({ type: 'extension', contact: '*' }),
      gw1: dn({ type: 'trunk', contact: 'sip:192.0.2.10:5060', prefix: '9' }),
      gw2: dn({ type: 'trunk', contact: 'sip:192.0.2.20', prefix: '8' }),
      ms1: dn({ type: 'voip-service', contact: 'sip:192.0.2.30:5070', 'service-type': 'msml' }),
    },
    new ManualClock(0),
    silentLogger,
  );
  const registrar = {
    registeredAt: (d: string, s: { address: string; port: number; flow?: Flow }) =>
      (d === '1001' && s.address === '192.0.2.1' && s.port === 5062) || (d === '1002' && s.flow === PHONE_FLOW),
    dnsOnFlow: (flow: Flow) => (flow === PHONE_FLOW ? ['1002'] : []),
  };
  return new CallerIdentifier(directory, registrar);
}

/** The flow 1002 registered on. */
const PHONE_FLOW = new FakeFlow('tcp-7', 'TCP', '192.0.2.2', 40000, 'accepted');

const udp = (address: string, port: number): Source => ({ transport: 'UDP', address, port, localAddress: '192.0.2.99', localPort: 5060 });

describe('CallerIdentifier: a caller DN only from what the server knows', () => {
  it('believes a claimed DN only where it is registered', () => {
    const ids = identifier();
    expect(ids.identify('1001', udp('192.0.2.1', 5062))).toEqual({ dn: '1001', presented: '1001' });
    // The same claim from elsewhere: no DN, and not presented as 1001 either.
    expect(ids.identify('1001', udp('192.0.2.66', 5062))).toEqual({ dn: null, presented: 'anonymous' });
  });

  it('names the DN registered on the flow whatever the From says', () => {
    const flow: Source = { ...udp('192.0.2.2', 40000), transport: 'TCP', flow: PHONE_FLOW };
    expect(identifier().identify('1002-0x5651', flow)).toEqual({ dn: '1002', presented: '1002' });
  });

  it('a fixed contact: by address and port, or by address alone when the contact names no port; a trunk presents its caller', () => {
    const ids = identifier();
    expect(ids.identify('+15551234', udp('192.0.2.10', 5060))).toEqual({ dn: 'gw1', presented: '+15551234' });
    expect(ids.identify('+15551234', udp('192.0.2.10', 5999))).toEqual({ dn: null, presented: '+15551234' });
    expect(ids.identify('5551234', udp('192.0.2.20', 41234))).toEqual({ dn: 'gw2', presented: '5551234' });
    expect(ids.identify(undefined, udp('192.0.2.30', 5070))).toEqual({ dn: 'ms1', presented: 'ms1' });
  });

  it('a stranger without From user is anonymous', () => {
    expect(identifier().identify(undefined, udp('203.0.113.5', 5060))).toEqual({ dn: null, presented: 'anonymous' });
  });
});
