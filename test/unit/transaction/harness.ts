/** Shared set-up for transaction tests: a layer on a ManualClock and a FakeTransport. */
import { expect } from 'vitest';
import type { SipRequest, SipResponse } from '../../../src/sip/message.js';
import type { TimerConfig } from '../../../src/transaction/timers.js';
import { TransactionLayer, type TransactionLayerOptions } from '../../../src/transaction/transaction-layer.js';
import type { ClientTransaction, ClientTransactionUser, FinalInfo, ServerTransaction, ServerTransactionFailure } from '../../../src/transaction/types.js';
import type { Source } from '../../../src/transport/types.js';
import { FakeTransport } from '../../support/fake-transport.js';
import { ManualClock } from '../../support/manual-clock.js';

export interface Tu {
  requests: { tx: ServerTransaction; req: SipRequest }[];
  cancels: { cancelTx: ServerTransaction; inviteTx: ServerTransaction | undefined }[];
  acks: { ack: SipRequest; source: Source; inviteTx: ServerTransaction | undefined }[];
  strays: SipResponse[];
  failures: { tx: ServerTransaction; failure: ServerTransactionFailure }[];
}

export interface Harness {
  clock: ManualClock;
  transport: FakeTransport;
  layer: TransactionLayer;
  tu: Tu;
}

type Overrides = Partial<Pick<TransactionLayerOptions, 'onRequest' | 'onCancel' | 'onAck' | 'onStrayResponse' | 'onServerFailure'>>;

export function setup(opts: { timers?: Partial<TimerConfig>; without?: ('onCancel' | 'onAck')[]; on?: Overrides } = {}): Harness {
  const clock = new ManualClock();
  const transport = new FakeTransport();
  const tu: Tu = { requests: [], cancels: [], acks: [], strays: [], failures: [] };
  const on = opts.on ?? {};
  const without = new Set(opts.without ?? []);
  const layer = new TransactionLayer({
    clock,
    transport,
    ...(opts.timers ? { timers: opts.timers } : {}),
    onRequest: (tx, req) => {
      tu.requests.push({ tx, req });
      on.onRequest?.(tx, req);
    },
    ...(without.has('onCancel')
      ? {}
      : {
          onCancel: (cancelTx: ServerTransaction, inviteTx: ServerTransaction | undefined) => {
            tu.cancels.push({ cancelTx, inviteTx });
            on.onCancel?.(cancelTx, inviteTx);
          },
        }),
    ...(without.has('onAck')
      ? {}
      : {
          onAck: (ack: SipRequest, source: Source, inviteTx: ServerTransaction | undefined) => {
            tu.acks.push({ ack, source, inviteTx });
            on.onAck?.(ack, source, inviteTx);
          },
        }),
    onStrayResponse: (res, source) => {
      tu.strays.push(res);
      on.onStrayResponse?.(res, source);
    },
    onServerFailure: (tx, failure) => {
      tu.failures.push({ tx, failure });
      on.onServerFailure?.(tx, failure);
    },
  });
  return { clock, transport, layer, tu };
}

export interface RecordingUser extends ClientTransactionUser {
  provisionals: SipResponse[];
  finals: { res: SipResponse; info: FinalInfo; tx: ClientTransaction }[];
  additional: SipResponse[];
}

export function recordingUser(): RecordingUser {
  const user: RecordingUser = {
    provisionals: [],
    finals: [],
    additional: [],
    onProvisional: (res) => user.provisionals.push(res),
    onFinal: (res, info, tx) => user.finals.push({ res, info, tx }),
    onAdditional2xx: (res) => user.additional.push(res),
  };
  return user;
}

/** No timer left on the clock and no live transaction in the layer. */
export function expectNoLeftovers(h: Harness): void {
  expect(h.clock.pendingCount).toBe(0);
  expect(h.layer.stats().active).toEqual({ 'invite-client': 0, 'non-invite-client': 0, 'invite-server': 0, 'non-invite-server': 0 });
}

/**
 * Advances the clock in `step` ms increments up to `total`, recording after each step how
 * many requests/responses matching `count` have been sent; returns the times of new sends.
 */
export function sendTimes(h: Harness, total: number, count: () => number, step = 50): number[] {
  const times: number[] = [];
  let seen = count();
  for (let t = step; t <= total; t += step) {
    h.clock.advance(step);
    const now = count();
    for (let i = seen; i < now; i++) times.push(t);
    seen = now;
  }
  return times;
}
