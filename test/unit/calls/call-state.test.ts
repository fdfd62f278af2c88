import { describe, expect, it } from 'vitest';
import { CALL_TRANSITIONS, CallStateMachine, type CallState } from '../../../src/calls/call-state.js';
import { SipServerError } from '../../../src/util/errors.js';
import { callRig, SDP_A, SDP_B } from './harness.js';

const STATES: CallState[] = ['dialing', 'ringing', 'established', 'released'];

function machineIn(state: CallState): CallStateMachine {
  const m = new CallStateMachine('c1', state === 'ringing' ? 'ringing' : 'dialing');
  if (state === 'established' || state === 'released') m.transition(state);
  return m;
}

describe('the call state machine: one transition() along an explicit table', () => {
  it('the table: setting up may ring, be answered or be released; MakeCall goes from ringing (from) back to dialing (to); established only ends; released is final', () => {
    expect(CALL_TRANSITIONS).toEqual({
      dialing: ['ringing', 'established', 'released'],
      ringing: ['dialing', 'established', 'released'],
      established: ['released'],
      released: [],
    });
  });

  it('every move in the table is taken; every other one throws CALL_ILLEGAL_TRANSITION and leaves the state as it was', () => {
    for (const from of STATES) {
      for (const to of STATES) {
        const m = machineIn(from);
        expect(m.state).toBe(from);
        if (CALL_TRANSITIONS[from].includes(to)) {
          m.transition(to);
          expect(m.state).toBe(to);
        } else {
          let thrown: unknown;
          try {
            m.transition(to);
          } catch (err) {
            thrown = err;
          }
          expect(thrown, `${from} -> ${to}`).toBeInstanceOf(SipServerError);
          expect((thrown as SipServerError).code).toBe('CALL_ILLEGAL_TRANSITION');
          expect((thrown as SipServerError).message).toBe(`call c1: ${from} -> ${to} is not in the transition table`);
          expect(m.state).toBe(from);
        }
      }
    }
  });

  it('a released call cannot be established, ring or be released again', () => {
    const m = machineIn('released');
    expect(() => m.transition('established')).toThrow(/released -> established/);
    expect(() => m.transition('ringing')).toThrow(/released -> ringing/);
    expect(() => m.transition('released')).toThrow(/released -> released/);
  });

  it('a transfer whose new party answers without an offer is released (rejected) and never established', async () => {
    const rig = callRig();
    const [a, b, c] = [rig.phone('1001'), rig.phone('1002'), rig.phone('1003')];
    const inv = a.invite('1002', { sdp: SDP_A });
    b.reply(b.last('INVITE'), 200, { body: SDP_B });
    a.callerDialog(inv).send('ACK', { cseq: 1 });
    const call = rig.calls.all()[0];
    if (!call) throw new Error('no call');
    const res = await rig.control.transfer(call, '1003');
    expect(res).toMatchObject({ ok: true, json: { method: 'reinvite' } });
    const newCallId = res.ok ? String(res.json.newCallId) : '';
    c.reply(c.last('INVITE'), 200);
    const moved = rig.eventsNamed('EventReleased').find((e) => e.callId === newCallId);
    expect(moved).toMatchObject({ cause: 'rejected' });
    expect(rig.eventsNamed('EventEstablished').map((e) => e.callId)).not.toContain(newCallId);
    expect(rig.calls.get(newCallId)).toBeUndefined();
    expect(rig.records.getCallRecord(newCallId)).toMatchObject({ cause: 'rejected' });
    expect(rig.errors).toEqual([]);
  });
});
