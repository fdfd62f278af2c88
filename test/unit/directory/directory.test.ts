import { describe, expect, it } from 'vitest';
import { Directory, type DnStateEvent } from '../../../src/directory/directory.js';
import { silentLogger } from '../../../src/util/logger.js';
import { ManualClock } from '../../support/manual-clock.js';
import { dn } from '../registrar/harness.js';

const T0 = 1_700_000_000_000;

function setup(): { clock: ManualClock; directory: Directory; events: { name: string; event: DnStateEvent }[] } {
  const clock = new ManualClock(T0);
  const directory = new Directory(
    {
      '1001': dn({ type: 'extension', contact: '*' }),
      gw1: dn({ type: 'trunk', contact: 'sip:192.0.2.10:5060;transport=tcp', prefix: '9' }),
      ms1: dn({ type: 'voip-service', contact: 'sip:192.0.2.20:5060', 'service-type': 'msml' }),
    },
    clock,
    silentLogger,
  );
  const events: { name: string; event: DnStateEvent }[] = [];
  directory.events.on('EventDNOutOfService', (event) => events.push({ name: 'EventDNOutOfService', event }));
  directory.events.on('EventDNBackInService', (event) => events.push({ name: 'EventDNBackInService', event }));
  return { clock, directory, events };
}

describe('Directory', () => {
  it('starts a contact "*" DN out of service (not registered) and fixed-contact DNs in service', () => {
    const { directory } = setup();
    expect(directory.get('1001')).toMatchObject({ number: '1001', state: 'out-of-service', reason: 'not registered', since: T0 });
    expect(directory.get('gw1')).toMatchObject({ number: 'gw1', state: 'in-service', reason: 'fixed contact', since: T0 });
    expect(directory.get('ms1')?.state).toBe('in-service');
    expect(directory.get('nope')).toBeUndefined();
    expect(directory.all().map((d) => d.number)).toEqual(['1001', 'gw1', 'ms1']);
    expect(directory.countByState()).toEqual({ 'in-service': 2, 'out-of-service': 1 });
  });

  it('setState emits exactly one event per change, with the DN, its type, the reason and the clock time', () => {
    const { clock, directory, events } = setup();
    clock.advance(5000);
    expect(directory.setState('gw1', 'out-of-service', 'OPTIONS timed out')).toBe(true);
    expect(events).toEqual([{ name: 'EventDNOutOfService', event: { dn: 'gw1', type: 'trunk', reason: 'OPTIONS timed out', time: T0 + 5000 } }]);
    expect(directory.get('gw1')).toMatchObject({ state: 'out-of-service', reason: 'OPTIONS timed out', since: T0 + 5000 });

    clock.advance(1000);
    expect(directory.setState('gw1', 'in-service', 'OPTIONS answered 200')).toBe(true);
    expect(events).toHaveLength(2);
    expect(events[1]).toEqual({ name: 'EventDNBackInService', event: { dn: 'gw1', type: 'trunk', reason: 'OPTIONS answered 200', time: T0 + 6000 } });
    expect(directory.countByState()).toEqual({ 'in-service': 2, 'out-of-service': 1 });
  });

  it('setState to the state a DN already has is a no-op: no event, reason and since unchanged', () => {
    const { clock, directory, events } = setup();
    clock.advance(1000);
    expect(directory.setState('gw1', 'in-service', 'OPTIONS answered 200')).toBe(false);
    expect(directory.setState('1001', 'out-of-service', 'no registration')).toBe(false);
    expect(events).toEqual([]);
    expect(directory.get('gw1')).toMatchObject({ state: 'in-service', reason: 'fixed contact', since: T0 });
    expect(directory.get('1001')).toMatchObject({ state: 'out-of-service', reason: 'not registered', since: T0 });

    expect(directory.setState('1001', 'in-service', 'registered')).toBe(true);
    expect(directory.setState('1001', 'in-service', 'registered')).toBe(false);
    expect(events.map((e) => e.name)).toEqual(['EventDNBackInService']);
  });

  it('setState on an unknown DN changes nothing and emits nothing', () => {
    const { directory, events } = setup();
    expect(directory.setState('9999', 'in-service', 'registered')).toBe(false);
    expect(directory.get('9999')).toBeUndefined();
    expect(events).toEqual([]);
  });
});
