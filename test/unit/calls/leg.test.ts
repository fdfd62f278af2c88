import { describe, expect, it } from 'vitest';
import { CalleeLeg, CallerLeg, type LegContext } from '../../../src/calls/leg.js';
import { Dialog } from '../../../src/dialog/dialog.js';
import { getHeaderValues, type SipRequest, type SipResponse } from '../../../src/sip/message.js';
import { writeTopVia } from '../../../src/transaction/top-via.js';
import type { ClientTransaction, ClientTransactionUser, FinalInfo } from '../../../src/transaction/types.js';
import type { Destination } from '../../../src/transport/types.js';
import { silentLogger } from '../../../src/util/logger.js';
import { ManualClock } from '../../support/manual-clock.js';
import { destination, request, response, source } from '../../support/sip-builders.js';
import type { RouteTarget } from '../../../src/calls/routing.js';

const T1 = 500;
const header = (msg: { headers: { name: string; value: string }[] }, name: string): string | undefined => getHeaderValues(msg, name)[0];
const network: FinalInfo = { local: false, source: source() };

interface FakeTx {
  req: SipRequest;
  dest: Destination;
  user: ClientTransactionUser;
  tx: { active: boolean; state: string; request: SipRequest; destination: Destination; reopen: boolean; cancelNoted: boolean; noteCancelSent(): void };
}

/** A LegContext whose transaction layer and transport only record what the leg sends. */
function fakeContext(types: Record<string, string> = {}) {
  const clock = new ManualClock();
  const direct: SipRequest[] = [];
  const transactions: FakeTx[] = [];
  const ctx: LegContext = {
    transactions: {
      sendAck: (req, dest) => {
        direct.push(req);
        return Promise.resolve({ transport: dest.transport, address: dest.address, port: dest.port });
      },
      sendRequest: (req, dest, user) => {
        // As the transaction layer does: the top Via is written when the transaction is made.
        writeTopVia(req, dest.transport, { host: '127.0.0.1', port: 5060 });
        const tx = {
          active: true,
          state: req.method === 'INVITE' ? 'Calling' : 'Trying',
          request: req,
          destination: dest,
          reopen: user.reopen ?? true,
          cancelNoted: false,
          noteCancelSent() {
            this.cancelNoted = true;
          },
        };
        transactions.push({ req, dest, user, tx });
        return tx as unknown as ClientTransaction;
      },
    },
    clock,
    log: silentLogger,
    timers: { t1: T1, t2: 4000 },
    contactFor: (user, transport) => `sip:${user}@127.0.0.1:5060;transport=${transport.toLowerCase()}`,
    typeOf: (dn) => types[dn],
  };
  /** Delivers a final response to the n-th transaction the leg started. */
  const answer = (n: number, status: number): SipResponse => {
    const t = transactions[n];
    if (!t) throw new Error(`no transaction ${n}`);
    t.tx.active = false;
    const res = response(t.req, status);
    t.user.onFinal(res, network, t.tx as unknown as ClientTransaction);
    return res;
  };
  return { ctx, clock, direct, transactions, answer, methods: () => transactions.map((t) => t.req.method) };
}

/** A dialog as the server's UAC side: our INVITE (CSeq 1) and the party's 200. */
function uacDialog(): Dialog {
  const invite = request({ method: 'INVITE', fromTag: 'ours', callId: 'leg-test@127.0.0.1' });
  return Dialog.asUac(invite, response(invite, 200, 'theirs'), destination(), '<sip:b2bua@127.0.0.1>');
}

function calleeWithInvite(f: ReturnType<typeof fakeContext>, state: string): CalleeLeg {
  const leg = new CalleeLeg(f.ctx);
  leg.tx = f.ctx.transactions.sendRequest(request({ method: 'INVITE' }), destination(), { onFinal: () => undefined });
  const t = f.transactions[0];
  if (t) t.tx.state = state;
  return leg;
}

describe('Leg: what one side of a call does', () => {
  it('a CANCEL asked for while the INVITE has had no provisional response is held back; the first provisional sends it, once', () => {
    const f = fakeContext();
    const leg = calleeWithInvite(f, 'Calling');
    leg.cancel([{ name: 'Reason', value: 'SIP;cause=487;text="caller hung up"' }]);
    expect(leg.cancelled).toBe(true);
    expect(f.methods()).toEqual(['INVITE']);
    leg.provisional();
    expect(f.methods()).toEqual(['INVITE', 'CANCEL']);
    const cancel = f.transactions[1]!.req;
    expect(header(cancel, 'via')).toBe(header(f.transactions[0]!.req, 'via'));
    expect(header(cancel, 'reason')).toBe('SIP;cause=487;text="caller hung up"');
    expect(f.transactions[0]!.tx.cancelNoted).toBe(true);
    leg.provisional();
    expect(f.methods()).toEqual(['INVITE', 'CANCEL']);
  });

  it('once the INVITE is Proceeding the CANCEL goes at once; an INVITE already ended gets none', () => {
    const f = fakeContext();
    calleeWithInvite(f, 'Proceeding').cancel();
    expect(f.methods()).toEqual(['INVITE', 'CANCEL']);
    const g = fakeContext();
    const ended = calleeWithInvite(g, 'Completed');
    g.transactions[0]!.tx.active = false;
    ended.cancel();
    ended.provisional();
    expect(g.methods()).toEqual(['INVITE']);
    expect(ended.cancelled).toBe(true);
  });

  it('sendInvite: the re-INVITE is pending until its final response; a 2xx is ACKed (its CSeq) before onFinal hears of it', () => {
    const f = fakeContext();
    const leg = new CalleeLeg(f.ctx);
    leg.dialog = uacDialog();
    const seen: string[] = [];
    leg.sendInvite(leg.dialog.createRequest('INVITE'), (res) => seen.push(`${res.status} after ${f.direct.length} ACK`));
    expect(leg.reinvitePending).toBe(true);
    f.answer(0, 200);
    expect(leg.reinvitePending).toBe(false);
    expect(seen).toEqual(['200 after 1 ACK']);
    expect(header(f.direct[0]!, 'cseq')).toBe('2 ACK');
    leg.sendInvite(leg.dialog.createRequest('INVITE'), (res) => seen.push(`${res.status} after ${f.direct.length} ACK`));
    f.answer(1, 488);
    expect(seen).toEqual(['200 after 1 ACK', '488 after 1 ACK']);
  });

  it('the server\'s own re-INVITE that gets no final response is CANCELled after 64·T1 (timer B stops on a 1xx)', async () => {
    const f = fakeContext();
    const leg = new CalleeLeg(f.ctx);
    leg.dialog = uacDialog();
    const done = leg.reinvite(Buffer.from('v=0\r\n'), () => undefined);
    f.transactions[0]!.tx.state = 'Proceeding';
    f.clock.advance(64 * T1 - 1);
    expect(f.methods()).toEqual(['INVITE']);
    f.clock.advance(1);
    expect(f.methods()).toEqual(['INVITE', 'CANCEL']);
    expect(header(f.transactions[1]!.req, 'reason')).toBe('SIP;cause=408;text="no final response"');
    f.answer(0, 487);
    expect((await done).status).toBe(487);
    expect(leg.reinvitePending).toBe(false);
  });

  it('a re-INVITE answered in time leaves no CANCEL timer behind', async () => {
    const f = fakeContext();
    const leg = new CalleeLeg(f.ctx);
    leg.dialog = uacDialog();
    const done = leg.reinvite(Buffer.from('v=0\r\n'), () => undefined);
    f.answer(0, 200);
    expect((await done).status).toBe(200);
    expect(f.clock.pendingCount).toBe(0);
  });

  it('the callee\'s 2xx is ACKed once; a retransmitted 2xx gets the very same ACK again', () => {
    const f = fakeContext();
    const leg = new CalleeLeg(f.ctx);
    leg.resendAck();
    expect(f.direct).toEqual([]);
    leg.dialog = uacDialog();
    leg.ackAnswer(Buffer.from('answer'));
    leg.ackAnswer();
    expect(f.direct).toHaveLength(1);
    expect(header(f.direct[0]!, 'cseq')).toBe('1 ACK');
    expect(f.direct[0]!.body.toString()).toBe('answer');
    leg.resendAck();
    expect(f.direct).toHaveLength(2);
    expect(f.direct[1]).toBe(f.direct[0]);
  });

  it('a transferee leg takes the dialog, its 2xx retransmitter, tag and REFER support from the old leg, which is left without', () => {
    const f = fakeContext();
    const old = new CalleeLeg(f.ctx);
    old.dialog = uacDialog();
    old.allowsRefer = true;
    const ok = { stop: () => undefined } as unknown as NonNullable<CalleeLeg['ok']>;
    old.ok = ok;
    const dialog = old.dialog;
    const leg = CallerLeg.transferee(f.ctx, '1002', old);
    expect(leg.role).toBe('transferee');
    expect(leg.dialog).toBe(dialog);
    expect(leg.ok).toBe(ok);
    expect(leg.tag).toBe('ours');
    expect(leg.acked).toBe(true);
    expect(leg.allowsRefer).toBe(true);
    expect(old.dialog).toBeUndefined();
    expect(old.ok).toBeUndefined();
    // And back (a failed phone transfer).
    leg.moveDialogTo(old);
    expect(old.dialog).toBe(dialog);
    expect(leg.dialog).toBeUndefined();
  });

  it('an originator is ACKed once; hanging it up ACKs and BYEs an answered one, CANCELs a ringing one', () => {
    const f = fakeContext();
    const answered = CallerLeg.originator(f.ctx, '1001', 'tag-1');
    answered.dialog = uacDialog();
    answered.hangUp([{ name: 'Reason', value: 'SIP;cause=486;text="x"' }]);
    expect(f.direct.map((r) => r.method)).toEqual(['ACK']);
    expect(f.methods()).toEqual(['BYE']);
    expect(header(f.transactions[0]!.req, 'reason')).toBe('SIP;cause=486;text="x"');
    answered.ackAnswer({ body: Buffer.from('late') });
    expect(f.direct).toHaveLength(1);

    const g = fakeContext();
    const ringing = CallerLeg.originator(g.ctx, '1001', 'tag-2');
    ringing.outTx = g.ctx.transactions.sendRequest(request({ method: 'INVITE' }), destination(), { onFinal: () => undefined });
    g.transactions[0]!.tx.state = 'Proceeding';
    ringing.hangUp([]);
    expect(g.methods()).toEqual(['INVITE', 'CANCEL']);
    expect(g.direct).toEqual([]);
  });

  it('re-open rule: no re-open towards a voip-service DN, on either leg; yes otherwise (and for a caller that is no DN)', () => {
    const f = fakeContext({ svc: 'voip-service', '1001': 'extension' });
    const callee = new CalleeLeg(f.ctx);
    const target = (dn: string, type: RouteTarget['type']): RouteTarget => ({ dn, type, requestUri: `sip:${dn}@192.0.2.9`, destination: destination() });
    callee.targets = [target('gw1', 'trunk'), target('svc', 'voip-service')];
    expect(callee.reopen).toBe(true);
    callee.index = 1;
    expect(callee.reopen).toBe(false);
    expect(CallerLeg.originator(f.ctx, 'svc', 't').reopen).toBe(false);
    expect(CallerLeg.originator(f.ctx, '1001', 't').reopen).toBe(true);
    const tx = { source: source() } as never;
    expect(CallerLeg.inbound(f.ctx, tx, request(), { dn: null, tag: 't', calledAs: '1002', call: 'c', allowsRefer: false }).reopen).toBe(true);
  });

  it('BYE goes in the leg\'s dialog (and stops its 2xx retransmission); a leg without a dialog sends nothing', () => {
    const f = fakeContext();
    const leg = new CalleeLeg(f.ctx);
    leg.bye();
    expect(f.methods()).toEqual([]);
    leg.dialog = uacDialog();
    let stopped = 0;
    leg.ok = { stop: () => stopped++ } as unknown as NonNullable<CalleeLeg['ok']>;
    leg.bye([{ name: 'Reason', value: 'SIP;cause=200;text="call transferred"' }]);
    expect(f.methods()).toEqual(['BYE']);
    expect(header(f.transactions[0]!.req, 'call-id')).toBe('leg-test@127.0.0.1');
    expect(stopped).toBe(1);
  });
});
