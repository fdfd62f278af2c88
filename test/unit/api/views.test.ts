import { describe, expect, it } from 'vitest';
import { contactView, dnView } from '../../../src/api/views.js';
import { hostPort } from '../../../src/util/host-port.js';
import { dnSchema } from '../../../src/config/schema.js';
import type { Dn } from '../../../src/directory/dn.js';
import type { Binding } from '../../../src/registrar/binding.js';

const now = Date.UTC(2024, 0, 1, 12, 0, 0);

const binding: Binding = {
  aor: '1001',
  contact: 'sip:1001@192.0.2.5:5062;transport=tcp',
  expiresAt: now + 90_400,
  callId: 'abc',
  cseq: 3,
  transport: 'TCP',
  source: { address: '192.0.2.5', port: 40123 },
  flowId: 'tcp-7',
  flowState: 'live',
  registeredAt: now - 60_000,
};

describe('control API views', () => {
  it('shows a DN with its configured options, state and registered contacts, never its password', () => {
    const dn: Dn = {
      number: '1001',
      options: dnSchema.parse({ type: 'extension', contact: '*', password: 'pw', 'oos-check': 30, 'oos-force': 5 }),
      state: 'in-service',
      reason: 'registered',
      since: now - 1000,
    };
    const view = dnView(dn, [binding], now);
    expect(view).toEqual({
      number: '1001',
      type: 'extension',
      state: 'in-service',
      reason: 'registered',
      since: '2024-01-01T11:59:59.000Z',
      contact: '*',
      contacts: [
        {
          contact: 'sip:1001@192.0.2.5:5062;transport=tcp',
          expires: 90,
          transport: 'TCP',
          source: '192.0.2.5:40123',
          flowId: 'tcp-7',
          flowState: 'live',
          registeredAt: '2024-01-01T11:59:00.000Z',
          instance: null,
          regId: null,
          path: null,
          owner: null,
        },
      ],
      options: { 'oos-check': 30, 'oos-force': 5, prefix: null, priority: 0, 'service-type': null },
    });
    expect(JSON.stringify(view)).not.toContain('pw');
  });

  it('shows expires as 0 past expiry and flowId as null for UDP bindings', () => {
    const udp: Binding = { ...binding, transport: 'UDP', expiresAt: now - 5000 };
    delete udp.flowId;
    expect(contactView(udp, now)).toMatchObject({ expires: 0, flowId: null, transport: 'UDP' });
  });

  it('brackets IPv6 addresses in "address:port"', () => {
    expect(hostPort('2001:db8::1', 5060)).toBe('[2001:db8::1]:5060');
    expect(hostPort('127.0.0.1', 5060)).toBe('127.0.0.1:5060');
  });
});
