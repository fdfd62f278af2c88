import { expect } from 'vitest';
import { EventStream, getJson, type ApiEvent } from './api-client.js';
import { Baresip, type BaresipEvent, type BaresipTransport, type TracedMessage } from './baresip.js';
import { makeCertificates } from './certs.js';
import { startServer, type RunningServer } from './server-process.js';

/** A request of `method` in a phone's SIP trace. */
export const isRequest = (m: TracedMessage, method: string): boolean => m.startLine.startsWith(`${method} `);
/** A response `status` to `method` in a phone's SIP trace. */
export const isResponse = (m: TracedMessage, status: number, method: string): boolean =>
  m.startLine.startsWith(`SIP/2.0 ${status} `) && (m.headers.cseq?.[0] ?? '').endsWith(` ${method}`);
/** The Call-ID of a traced message (baresip's call `id`). */
export const callIdOf = (m: TracedMessage): string => m.headers['call-id']?.[0] ?? '';

/**
 * The server (TLS on, with a certificate made here) and baresip phones registered to it, one per
 * `{dn, transport}`, started once for a describe block; the control API's event stream; and the
 * steps every real-phone scenario shares: dial and ring, answer, and end whatever calls a test
 * left (so the next one starts clean).
 */
export class PhoneRig {
  readonly phones: Baresip[] = [];
  /** Index into the API events where the running test began. */
  mark = 0;
  private readonly phoneMarks = new Map<Baresip, number>();

  private constructor(
    readonly server: RunningServer,
    readonly events: EventStream,
  ) {}

  static async start(phones: { dn: string; transport: BaresipTransport }[]): Promise<PhoneRig> {
    const certs = makeCertificates({ server: ['DNS:localhost', 'IP:127.0.0.1'] });
    const cert = certs.issued.server;
    if (!cert) throw new Error('no server certificate');
    const dns = Object.fromEntries(phones.map((p) => [p.dn, { type: 'extension', contact: '*' }]));
    const server = await startServer({ tls: true, tserver: { 'sip-tls-cert': cert.cert, 'sip-tls-key': cert.key }, dns });
    const rig = new PhoneRig(server, await EventStream.open(server.api));
    for (const { dn, transport } of phones) {
      const at = { address: '127.0.0.1', port: transport === 'TLS' ? server.tlsPort : server.port };
      // baresip 1.0 does not check the server's certificate (see baresip.ts); the CA is given as a phone would be configured.
      rig.phones.push(await Baresip.start({ dn, transport, server: at, ...(transport === 'TLS' ? { caFile: certs.ca } : {}) }));
    }
    return rig;
  }

  /** Phones first, while the server can still take their un-REGISTER. */
  async stop(): Promise<void> {
    for (const phone of this.phones) await phone.stop();
    this.events.close();
    await this.server.stop();
  }

  /** Marks where the running test's API events and phone events begin. */
  beginTest(): void {
    this.mark = this.events.events.length;
    for (const phone of this.phones) this.phoneMarks.set(phone, phone.mark());
  }

  /** BARESIP_DEBUG=1 prints what each phone saw in the test; then every call left is ended. */
  async endTest(name: string): Promise<void> {
    if (process.env.BARESIP_DEBUG) {
      console.log([name, ...this.phones.map((p) => `  ${p.dn}/${p.transport}: ${p.eventSummary(this.phoneMarks.get(p))}`)].join('\n'));
    }
    for (const phone of this.phones) {
      for (let i = 0; i < 5 && (await phone.calls()).length > 0; i++) await phone.command('hangup');
    }
    const end = Date.now() + 5000;
    while ((await this.calls()).length > 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
  }

  /** The first API event of the running test named `name` that matches. */
  apiEvent(name: string, match: (e: ApiEvent) => boolean = () => true, ms = 5000): Promise<ApiEvent> {
    return this.events.next((e) => e.event === name && match(e), ms, this.mark);
  }

  async calls<T = unknown>(): Promise<T[]> {
    return (await getJson<T[]>(this.server.api, '/calls')).body;
  }

  /** `caller` dials `callee`'s DN; resolves once the callee's phone rings, with both phones' events. */
  async ring(caller: Baresip, callee: Baresip): Promise<{ incoming: BaresipEvent; ringing: BaresipEvent }> {
    const [callerMark, calleeMark] = [caller.mark(), callee.mark()];
    expect((await caller.dial(callee.dn)).ok).toBe(true);
    const incoming = await callee.waitEvent('CALL_INCOMING', () => true, 5000, calleeMark);
    const ringing = await caller.waitEvent('CALL_RINGING', () => true, 5000, callerMark);
    return { incoming, ringing };
  }

  /** A call from `caller` to `callee`, answered; the server's call id and both phones' call events. */
  async establish(caller: Baresip, callee: Baresip): Promise<{ callId: string; outgoing: BaresipEvent; incoming: BaresipEvent }> {
    const [callerMark, calleeMark] = [caller.mark(), callee.mark()];
    const { incoming } = await this.ring(caller, callee);
    expect((await callee.command('accept')).ok).toBe(true);
    const outgoing = await caller.waitEvent('CALL_ESTABLISHED', () => true, 5000, callerMark);
    await callee.waitEvent('CALL_ESTABLISHED', () => true, 5000, calleeMark);
    const established = await this.apiEvent('EventEstablished', (e) => e.from === caller.dn && e.to === callee.dn);
    return { callId: String(established.callId), outgoing, incoming };
  }
}
