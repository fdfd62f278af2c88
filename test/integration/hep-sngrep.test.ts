import { spawn, type ChildProcess } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getHeader } from '../../src/sip/message.js';
import { parseMessage } from '../../src/sip/parser.js';
import { serializeMessage } from '../../src/sip/serializer.js';
import { readPcapUdp, type PcapUdp } from '../support/pcap.js';
import { freePort } from '../support/ports.js';
import { startServer, type RunningServer } from '../support/server-process.js';
import { SipPeer } from '../support/sip-peer.js';
import { waitFor } from '../support/wait-for.js';

/*
 * The real consumer: sngrep (Debian package `sngrep`, 1.6) listening for HEP (`-L`) with no
 * terminal (`-N`), writing what it captured to a pcap file (`-O`; it wraps each HEP payload
 * in an Ethernet/IPv4/UDP frame built from the HEP addresses and ports) and checking the
 * server's auth key (`eep.listen.pass` in its own config file). A call over UDP → TCP and
 * the registrations before it must all be in that file, each message once, with the right
 * addresses, ports and bytes; on SIGTERM sngrep prints how many dialogs it parsed.
 */

const PASSWORD = 'sngrep-h3p';

/** sngrep bound its UDP port: binding it ourselves fails. */
function udpTaken(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const u = createSocket('udp4');
    u.once('error', () => resolve(true));
    u.bind(port, '127.0.0.1', () => u.close(() => resolve(false)));
  });
}

function sdp(owner: string, port: number): string {
  return ['v=0', `o=${owner} 1 1 IN IP4 127.0.0.1`, 's=-', 'c=IN IP4 127.0.0.1', 't=0 0', `m=audio ${port} RTP/AVP 0`, 'a=rtpmap:0 PCMU/8000', ''].join('\r\n');
}

describe('sngrep as the HEP collector (sngrep -N -L udp:… -O file.pcap)', () => {
  let dir: string;
  let pcap: string;
  let sngrep: ChildProcess;
  let sngrepOut = '';
  let sngrepExit: Promise<number | null>;
  let server: RunningServer;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sngrep-hep-'));
    pcap = join(dir, 'capture.pcap');
    const config = join(dir, 'sngreprc');
    writeFileSync(config, `set eep.listen.pass ${PASSWORD}\n`);
    const port = await freePort();
    // -F: none of the machine's or user's sngreprc, only ours (-f); no -q: the dialog count is printed on exit.
    sngrep = spawn('sngrep', ['-F', '-f', config, '-N', '-L', `udp:127.0.0.1:${port}`, '-O', pcap], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TERM: 'dumb' } });
    sngrep.stdout?.on('data', (d: Buffer) => (sngrepOut += d.toString()));
    sngrep.stderr?.on('data', (d: Buffer) => (sngrepOut += d.toString()));
    sngrepExit = new Promise((r) => sngrep.once('exit', (code) => r(code)));
    await waitFor(() => sngrep.exitCode !== null || sngrepOut.includes('Dialog count'), 'sngrep to start', 5000);
    for (let i = 0; i < 100 && !(await udpTaken(port)); i++) await new Promise((r) => setTimeout(r, 50));
    if (sngrep.exitCode !== null) throw new Error(`sngrep exited at start: ${sngrepOut}`);
    server = await startServer({
      tserver: { 'hep-address': '127.0.0.1', 'hep-port': port, 'hep-password': PASSWORD },
      dns: { '1001': { type: 'extension', contact: '*' }, '1002': { type: 'extension', contact: '*' } },
    });
  });

  afterAll(async () => {
    if (server) expect(await server.stop()).toBe(0);
    if (sngrep && sngrep.exitCode === null) {
      sngrep.kill('SIGKILL');
      await sngrepExit;
    }
  });

  it('captures every message of a call (UDP caller, TCP callee) and the registrations, as they were on the wire', async () => {
    const caller = await SipPeer.start({ user: '1001', transport: 'UDP' });
    const callee = await SipPeer.start({ user: '1002', transport: 'TCP' });
    const peers = [caller, callee];
    try {
      await caller.register(server.port);
      await callee.register(server.port);
      const call = caller.call(server.port, '1002', { sdp: sdp('caller', 40_000) });
      const incoming = await callee.nextIncomingCall();
      incoming.ring();
      await call.waitStatus(180);
      const acked = incoming.answer(sdp('callee', 50_000));
      expect((await call.final()).status).toBe(200);
      await acked;
      expect((await call.bye()).status).toBe(200);
      await incoming.byeReceived();

      const expected = peers.reduce((n, p) => n + p.messages.length, 0);
      let captured: PcapUdp[] = [];
      await waitFor(() => (captured = readPcapUdp(pcap)).length >= expected, `${expected} messages in sngrep's pcap (has ${captured.length})`, 5000);
      await new Promise((r) => setTimeout(r, 300));
      sngrep.kill('SIGTERM');
      expect(await sngrepExit).toBe(0);
      captured = readPcapUdp(pcap);
      expect(captured).toHaveLength(expected);

      for (const peer of peers) {
        const ports = new Set([peer.port, ...peer.flows().map((f) => f.localPort)]);
        const toServer = captured.filter((c) => ports.has(c.sourcePort));
        const fromServer = captured.filter((c) => ports.has(c.destinationPort));
        const sent = peer.messages.filter((m) => m.dir === 'out');
        const received = peer.messages.filter((m) => m.dir === 'in');
        expect(toServer.map((c) => c.payload.toString('latin1')), `${peer.user} → server`).toEqual(sent.map((m) => serializeMessage(m.message).toString('latin1')));
        expect(fromServer.map((c) => parseMessage(c.payload)), `server → ${peer.user}`).toEqual(received.map((m) => m.message));
        for (const c of toServer) expect(c).toMatchObject({ source: '127.0.0.1', destination: '127.0.0.1', destinationPort: server.port });
        for (const c of fromServer) expect(c).toMatchObject({ source: '127.0.0.1', destination: '127.0.0.1', sourcePort: server.port });
      }
      // sngrep's frames carry the HEP timestamp: the server's clock when it saw each message.
      for (const c of captured) expect(Math.abs(c.atMs - Date.now())).toBeLessThan(30_000);
      // What sngrep made of it: the two registrations and the call's two legs, as dialogs.
      const callIds = new Set(captured.map((c) => getHeader(parseMessage(c.payload), 'call-id')));
      expect(callIds.size).toBe(4);
      expect(sngrepOut).toMatch(new RegExp(`Dialog count: ${callIds.size}\\s*$`));
    } finally {
      for (const p of peers) await p.close();
    }
  });
});
