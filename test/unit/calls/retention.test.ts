import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { getHeader } from '../../../src/sip/message.js';
import { callRig, establish, flush, SDP_B, type Rig } from './harness.js';

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** A call set up and hung up by the caller; only a weak reference to the call is kept. */
function callThatEnded(rig: Rig): { ref: WeakRef<object>; b: ReturnType<typeof establish>['b']; bInvite: ReturnType<typeof establish>['bInvite'] } {
  const { b, bInvite, aDialog, call } = establish(rig);
  const ref = new WeakRef(call);
  aDialog.send('BYE');
  b.reply(b.last('BYE'), 200);
  return { ref, b, bInvite };
}

describe('a released call is not kept by the transactions that outlive it', () => {
  it('while its transactions absorb retransmissions (timers L, J, M: 32 s) the call can be collected, and a late 2xx from the callee is still ACKed and BYEd', async () => {
    const rig = callRig();
    const { ref, b, bInvite } = callThatEnded(rig);
    expect(rig.calls.all()).toEqual([]);
    rig.clock.advance(6000); // timer K ends the BYE to the callee (T4, 5 s), whose user is the call's
    expect(rig.eventsNamed('EventReleased')).toMatchObject([{ cause: 'normal', releasedBy: 'caller' }]);
    const active = rig.layer.stats().active;
    expect(active['invite-client']).toBe(1); // the INVITE to the callee, timer M
    expect(active['invite-server']).toBe(1); // the caller's INVITE, timer L

    await flush();
    gc();
    expect(ref.deref()).toBeUndefined();

    // The callee did not get our ACK and sends its 2xx again: ACKed, and (the call being gone) BYEd.
    const acks = b.received('ACK').length;
    b.reply(bInvite, 200, { body: SDP_B });
    expect(b.received('ACK')).toHaveLength(acks + 1);
    expect(getHeader(b.last('BYE'), 'reason')).toBe('SIP;cause=487;text="call already ended"');
    expect(rig.errors).toEqual([]);
  });
});
