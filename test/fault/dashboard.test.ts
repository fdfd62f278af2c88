import { mkdirSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join, resolve } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventStream } from '../support/api-client.js';
import { clearRules, dropFlow, faultNet, setServerKeepAliveSysctls } from '../support/netns.js';
import { startServer, type RunningServer } from '../support/server-process.js';
import { branchOf, SipPeer } from '../support/sip-peer.js';
import type { IncomingCall, PeerCall } from '../support/sip-peer.js';

/*
 * The dashboard (GET /dashboard) in a real browser: Debian's Chromium, headless, driven by
 * playwright-core (which never downloads a browser of its own). One server and one page for
 * the whole story, in the fault namespaces: the page is opened with the token once; a phone
 * registers over TCP; a call rings; the ringing phone's connection is silently dropped by a
 * firewall, found dead by keep-alive and re-opened with the INVITE re-sent; the call is
 * answered and ends. Every step is asserted on the page's DOM, as the page updated itself
 * (never reloaded), and a screenshot of each is written to test-output/dashboard/.
 */

const net = faultNet();
const SERVER = { address: net.srvAddr, port: 5060 };
const SHOTS = resolve(import.meta.dirname, '../../test-output/dashboard');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const STEP_MS = 15_000;

const sdp = (owner: string, port: number): string =>
  ['v=0', `o=${owner} 1 1 IN IP4 ${net.epAddr}`, 's=-', `c=IN IP4 ${net.epAddr}`, 't=0 0', `m=audio ${port} RTP/AVP 0`, ''].join('\r\n');

let server: RunningServer;
let events: EventStream;
let browser: Browser;
let page: Page;
let caller: SipPeer;
let callee: SipPeer;
let call: PeerCall;
let incoming: IncomingCall;
const sockets: Socket[] = [];

function openTcp(to: { address: string; port: number }): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(to.port, to.address, () => resolve(s));
    s.once('error', reject);
  });
}

async function shot(name: string): Promise<void> {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

/** The texts of a table row's cells. */
async function cells(selector: string): Promise<string[]> {
  const row = page.locator(selector);
  await row.waitFor({ timeout: STEP_MS });
  return row.locator('td').allInnerTexts();
}

/** One attribute of every element that matches. */
async function attributes(selector: string, name: string): Promise<(string | null)[]> {
  return Promise.all((await page.locator(selector).all()).map((l) => l.getAttribute(name)));
}

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  setServerKeepAliveSysctls(net, 2, 1, 2);
  server = await startServer({
    netns: { name: net.srv, address: net.srvAddr },
    tserver: { 'sip-enable-tcp-keep-alive': true, 'sip-tcp-keep-alive-idle': 2, 'sip-tcp-keep-alive-interval': 1, 'sip-tcp-keep-alive-count': 2, 'sip-tcp-connect-timeout': 2000 },
    dns: { '1001': { type: 'extension', contact: '*' }, '1002': { type: 'extension', contact: '*' } },
    logLevel: 'info',
  });
  events = await EventStream.open(server.api, server.token);
  caller = await SipPeer.start({ transport: 'UDP', user: '1001', address: net.epAddr });
  callee = await SipPeer.start({ transport: 'TCP', user: '1002', address: net.epAddr });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
  });
  page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
}, 60_000);

afterAll(async () => {
  clearRules();
  for (const s of sockets) s.destroy();
  await browser?.close();
  await caller?.close();
  await callee?.close();
  events?.close();
  await server?.stop();
});

describe('the dashboard in headless Chromium, live through a call whose connection dies', () => {
  it('asks for the token, takes it once (?token=), then is live with it out of the address bar', async () => {
    const refused = await page.goto(`${server.api}/dashboard`);
    expect(refused?.status()).toBe(401);
    await expect(page.locator('form input[name="token"]').count()).resolves.toBe(1);
    await page.goto(`${server.api}/dashboard?token=${server.token ?? ''}`);
    expect(new URL(page.url()).search).toBe('');
    await page.locator('#live.on').waitFor({ timeout: STEP_MS });
    expect(await page.locator('#live').innerText()).toBe('live');
    // Out of service until they register.
    expect(await page.locator('#dn-rows tr[data-dn="1001"]').getAttribute('data-state')).toBe('out-of-service');
    await shot('1-signed-in');
  });

  it('a phone registers over TCP: its DN turns in service with its contact and flow; its connection shows keep-alive on with the socket\'s timers', async () => {
    expect((await caller.register(SERVER)).status).toBe(200);
    expect((await callee.register(SERVER)).status).toBe(200);
    const flow = callee.flows().find((f) => f.open);
    const conn = await cells(`#connection-rows tr[data-transport="TCP"][data-keepalive="on"]`);
    expect(conn[4]).toBe(`${net.epAddr}:${flow?.localPort ?? 0}`);
    // The binding names that connection as its flow, live.
    const dn = await cells('#dn-rows tr[data-dn="1002"][data-state="in-service"]');
    expect(dn[5]).toContain(`sip:1002@${net.epAddr}:${callee.port}`);
    expect(dn[5]).toContain(`TCP · ${conn[0] ?? ''} live`);
    expect(conn[7]).toBe('on · idle 2 s · interval 1 s · count 2 · user timeout OS');
    expect(await page.locator('#event-log li[data-event="EventRegistered"]').count()).toBeGreaterThanOrEqual(2);
    expect(await page.locator('#counter-registered output').innerText()).toBe('2');
    await shot('2-registered');
  });

  it('a call rings: calls in progress shows it ringing with both legs', async () => {
    call = caller.call(SERVER, '1002', { sdp: sdp('caller', 40000) });
    incoming = await callee.nextIncomingCall();
    incoming.ring();
    await call.waitStatus(180);
    const row = await cells('#call-rows tr[data-state="ringing"]');
    expect(row.slice(1, 4)).toEqual(['ringing', '1001', '1002']);
    expect(row[4]).toContain('1001 · UDP');
    expect(row[5]).toContain('1002 · TCP');
    await shot('3-ringing');
  });

  it('the ringing phone\'s connection is dropped by a firewall: found dead by keep-alive with the INVITE in flight, re-opened to its Contact, the INVITE re-sent', async () => {
    const flow = callee.flows().find((f) => f.open);
    if (!flow) throw new Error('the callee has no open connection');
    dropFlow(net, { serverPort: 5060, endpointPort: flow.localPort });
    const reopened = await events.next((e) => e.event === 'ConnectionReopened', STEP_MS);
    const dead = await cells(`#dead-rows tr[data-id="${String(reopened.connectionId)}"][data-outcome="reopened"]`);
    expect(dead[2]).toBe('TCP');
    expect(dead[3]).toBe(`${net.epAddr}:${flow.localPort}`);
    expect(dead[4]).toMatch(/^keepalive-timeout \(/);
    expect(dead[5]).toBe('INVITE');
    expect(dead[6]).toBe(`re-opened to ${net.epAddr}:${callee.port} as ${String(reopened.newConnectionId)} in ${String(reopened.reopenMs)} ms; re-sent INVITE`);
    // The new connection is in the list, the old one gone; the counters moved.
    await page.locator(`#connection-rows tr[data-id="${String(reopened.newConnectionId)}"]`).waitFor({ timeout: STEP_MS });
    expect(await page.locator(`#connection-rows tr[data-id="${String(reopened.connectionId)}"]`).count()).toBe(0);
    expect(await page.locator('#counter-dead output').innerText()).toBe('1');
    expect(await page.locator('#counter-reopened output').innerText()).toBe('1');
    expect(await page.locator('#event-log li[data-event="ConnectionStale"]').count()).toBe(1);
    // What the phone saw: the same INVITE (branch) again, on the new connection.
    const copies = callee.messages.filter((m) => m.dir === 'in' && m.message.kind === 'request' && m.message.method === 'INVITE' && branchOf(m.message) === branchOf(incoming.invite));
    expect(copies.length).toBeGreaterThanOrEqual(2);
    await shot('4-connection-reopened');
  });

  it('the call is answered and ends: it leaves the calls in progress and shows released with cause normal', async () => {
    const ack = incoming.answer(sdp('callee', 50000));
    expect((await call.final()).status).toBe(200);
    await ack;
    await page.locator('#call-rows tr[data-state="established"]').waitFor({ timeout: STEP_MS });
    await shot('5-established');
    await call.bye();
    await incoming.byeReceived();
    const released = await cells('#released-rows tr[data-cause="normal"]');
    expect(released.slice(1, 4)).toEqual(['1001', '1002', 'normal']);
    await page.locator('#calls-empty:not([hidden])').waitFor({ timeout: STEP_MS });
    expect(await page.locator('#call-rows tr').count()).toBe(0);
    const log = await attributes('#event-log li', 'data-event');
    for (const name of ['EventDialing', 'EventRinging', 'EventEstablished', 'EventReleased', 'ConnectionStale', 'ConnectionReopened']) expect(log).toContain(name);
    await shot('6-released');
  });

  it('many connections are paged, 50 rows at a time, never all in the DOM: 120 more idle connections make three pages', async () => {
    for (let i = 0; i < 120; i++) sockets.push(await openTcp(SERVER));
    // The server's count (the callee's old connection may linger half-open on its side).
    let total = 0;
    for (let tries = 0; total < 121 && tries < 100; tries++) {
      const res = await fetch(`${server.api}/connections?limit=0`, { headers: { authorization: `Bearer ${server.token ?? ''}` } });
      total = Number(res.headers.get('x-total-count'));
      if (total < 121) await new Promise((r) => setTimeout(r, 50));
    }
    expect(total).toBeGreaterThanOrEqual(121);
    await page.locator('#connections-total').filter({ hasText: `(${total})` }).waitFor({ timeout: STEP_MS });
    expect(await page.locator('#connection-rows tr').count()).toBe(50);
    expect(await page.locator('#connections-pager .where').innerText()).toBe('page 1 of 3');
    const firstPage = await attributes('#connection-rows tr', 'data-id');
    await page.locator('#connections-pager button[data-step="1"]').click();
    await page.locator('#connections-pager .where').filter({ hasText: 'page 2 of 3' }).waitFor({ timeout: STEP_MS });
    const secondPage = await attributes('#connection-rows tr', 'data-id');
    expect(secondPage).toHaveLength(50);
    expect(secondPage.filter((id) => firstPage.includes(id))).toEqual([]);
    await shot('7-paged');
  });
});
