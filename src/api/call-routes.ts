import { calleeDn, type Call } from '../calls/call.js';
import type { CallManager } from '../calls/call-manager.js';
import { HttpError } from './http-error.js';
import type { Router } from './router.js';
import { hostPort, isoTime } from './views.js';

/** What the control API uses of the call manager. */
export type CallsView = Pick<CallManager, 'all' | 'get' | 'releaseCall'>;

export interface CallView {
  id: string;
  from: string;
  to: string;
  /** The DN the call reached (or is trying): an extension, trunk or voip-service. */
  calleeDn: string;
  state: Call['state'];
  held: boolean;
  startedAt: string;
  answeredAt: string | null;
  legs: {
    caller: { callId: string; transport: string; remote: string; flowId: string | null };
    callee: { callId: string | null; dn: string; transport: string | null; flowId: string | null };
  };
}

export function callView(call: Call): CallView {
  const src = call.a.tx.source;
  const b = call.b.tx;
  return {
    id: call.id,
    from: call.from,
    to: call.to,
    calleeDn: calleeDn(call),
    state: call.state,
    held: call.held,
    startedAt: isoTime(call.startedAt),
    answeredAt: call.answeredAt === undefined ? null : isoTime(call.answeredAt),
    legs: {
      caller: { callId: call.a.dialog?.callId ?? '', transport: src.transport, remote: hostPort(src.address, src.port), flowId: src.flowId ?? null },
      callee: {
        callId: call.b.dialog?.callId ?? null,
        dn: calleeDn(call),
        transport: b?.destination.transport ?? null,
        flowId: b?.flow?.flowId ?? null,
      },
    },
  };
}

/** GET /calls, GET /calls/{id}, DELETE /calls/{id} (ReleaseCall, cause "administrative"). */
export function addCallRoutes(router: Router, calls: CallsView): void {
  const find = (id: string | undefined): Call => {
    const call = id === undefined ? undefined : calls.get(id);
    if (!call) throw new HttpError(404, `unknown call ${id ?? ''}`);
    return call;
  };
  router
    .add('GET', '/calls', () => ({ status: 200, json: calls.all().map(callView) }))
    .add('GET', '/calls/{id}', ({ params }) => ({ status: 200, json: callView(find(params.id)) }))
    .add('DELETE', '/calls/{id}', ({ params }) => {
      const call = find(params.id);
      calls.releaseCall(call, 'administrative', 'SIP;cause=200;text="released by the control API"');
      return { status: 200, json: { id: call.id, state: call.state, cause: call.cause ?? null } };
    });
}
