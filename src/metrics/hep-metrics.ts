import type { HepStats } from '../capture/hep-exporter.js';
import type { Metrics } from './metrics.js';

/**
 * HEP export (hep-address): packets sent to the collector, and SIP messages that were not
 * exported, by reason (`send-error`: the socket refused or failed the packet; `too-large`:
 * it would not fit in one UDP datagram). Read from the exporter when scraped.
 */
export function hepMetrics(m: Metrics, hep: { stats(): HepStats }): void {
  m.counter('sip_hep_packets_sent_total', 'HEP packets sent to the collector (one per SIP message in or out)', [], (c) => {
    c.reset();
    c.inc(hep.stats().sent);
  });
  m.counter('sip_hep_packets_failed_total', 'SIP messages not exported to the HEP collector, by reason (send-error, too-large)', ['reason'], (c) => {
    const s = hep.stats();
    c.reset();
    c.inc({ reason: 'send-error' }, s.sendFailures);
    c.inc({ reason: 'too-large' }, s.tooLarge);
  });
}
