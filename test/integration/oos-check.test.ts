import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventStream, getJson } from '../support/api-client.js';
import { freePort } from '../support/ports.js';
import { startServer, type RunningServer } from '../support/server-process.js';
import { startSippServer } from '../support/sipp.js';

/**
 * The active out-of-service check against a real peer: SIPp as a UAS that answers OPTIONS.
 * Short timers (check every 1 s, out of service after 1 s without an answer) keep it quick.
 */
describe('OOS check against a SIPp UAS', () => {
  let server: RunningServer;
  let events: EventStream;
  let peerPort: number;

  beforeAll(async () => {
    peerPort = await freePort();
    server = await startServer({
      dns: { ms1: { type: 'voip-service', 'service-type': 'msml', contact: `sip:127.0.0.1:${peerPort}`, 'oos-check': 1, 'oos-force': 1 } },
    });
    events = await EventStream.open(server.api);
  });

  afterAll(async () => {
    events.close();
    expect(await server.stop()).toBe(0);
  });

  it('stays in service while answered, goes out within oos-check + oos-force when the peer stops, and comes back', async () => {
    const uas = await startSippServer({ scenario: 'options-uas.xml', port: peerPort, transport: 'u1' });
    try {
      // Wait for the third check: the first two were answered within oos-force, or the DN
      // would have gone out of service already.
      await expect
        .poll(async () => optionsSent(await (await fetch(`${server.api}/metrics`)).text()), { timeout: 5000, interval: 100 })
        .toBeGreaterThanOrEqual(3);
      expect((await getJson<{ state: string }>(server.api, '/dns/ms1')).body.state).toBe('in-service');
      expect(events.events.filter((e) => e.dn === 'ms1')).toEqual([]);
    } finally {
      await uas.stop();
    }
    const stoppedAt = Date.now();
    const out = await events.next((e) => e.event === 'EventDNOutOfService' && e.dn === 'ms1', 5000);
    // SPEC §4: out of service within oos-check + oos-force (1 + 1 s); 750 ms for scheduling.
    expect(Date.now() - stoppedAt).toBeLessThanOrEqual(2000 + 750);
    expect(out.reason).toMatch(/no response to OPTIONS within 1 s/);
    expect((await getJson<{ state: string }>(server.api, '/dns/ms1')).body.state).toBe('out-of-service');

    const again = await startSippServer({ scenario: 'options-uas.xml', port: peerPort, transport: 'u1' });
    try {
      const back = await events.next((e) => e.event === 'EventDNBackInService' && e.dn === 'ms1', 5000);
      expect(back.reason).toMatch(/OPTIONS answered 200/);
      expect((await getJson<{ state: string }>(server.api, '/dns/ms1')).body.state).toBe('in-service');
    } finally {
      await again.stop();
    }
  });
});

function optionsSent(metrics: string): number {
  const m = /^sip_transactions_total\{kind="non-invite-client"\} (\d+)/m.exec(metrics);
  return m ? Number(m[1]) : 0;
}
