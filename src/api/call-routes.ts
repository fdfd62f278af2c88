import { calleeDn, type Call } from '../calls/call.js';
import type { CallManager } from '../calls/call-manager.js';
import type { IncomingMessage } from 'node:http';
import type { CallControl, ControlResult } from '../calls/call-control.js';
import type { MakeCall } from '../calls/make-call.js';
import { HttpError } from './http-error.js';
import type { Router } from './router.js';
import { hostPort } from '../util/host-port.js';
import { isoTime } from './views.js';

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
  const src = call.a.tx?.source;
  const b = call.b.tx;
  return {
    id: call.id,
    from: call.from,
    to: call.to,
    calleeDn: calleeDn(call),
    state: call.state,
    held: call.heldBy !== undefined,
    startedAt: isoTime(call.startedAt),
    answeredAt: call.answeredAt === undefined ? null : isoTime(call.answeredAt),
    legs: {
      caller: {
        callId: call.a.dialog?.callId ?? '',
        transport: src?.transport ?? call.a.outTx?.destination.transport ?? 'UDP',
        remote: src ? hostPort(src.address, src.port) : hostPort(call.a.dialog?.destination.address ?? '', call.a.dialog?.destination.port ?? 0),
        flowId: src?.flowId ?? call.a.outTx?.flow?.flowId ?? null,
      },
      callee: {
        callId: call.b.dialog?.callId ?? null,
        dn: calleeDn(call),
        transport: b?.destination.transport ?? null,
        flowId: b?.flow?.flowId ?? null,
      },
    },
  };
}

/** MakeCall as the API uses it. */
export type MakeCallView = Pick<MakeCall, 'start'>;

/** HoldCall, RetrieveCall and SingleStepTransfer as the API uses them. */
export type CallControlView = Pick<CallControl, 'hold' | 'retrieve' | 'transfer'>;

const DN = /^[A-Za-z0-9._+-]{1,64}$/;
const NUMBER = /^[A-Za-z0-9._+*#-]{1,64}$/;

/** An optional string field of a request body that must match `pattern`. */
function field(body: Record<string, unknown>, name: string, pattern: RegExp): string | undefined {
  const value = body[name];
  if (value === undefined) return undefined;
  const text = typeof value === 'string' || typeof value === 'number' ? String(value) : '';
  if (!pattern.test(text)) throw new HttpError(400, `"${name}" must be a number or DN`);
  return text;
}

/**
 * POST /calls (MakeCall), GET /calls, GET /calls/{id}, DELETE /calls/{id} (ReleaseCall,
 * cause "administrative").
 */
export function addCallRoutes(router: Router, calls: CallsView, makeCall?: MakeCallView, control?: CallControlView): void {
  if (makeCall) {
    router.add('POST', '/calls', async ({ req }) => {
      const body = await readJson(req);
      const from = typeof body.from === 'string' || typeof body.from === 'number' ? String(body.from) : '';
      const to = typeof body.to === 'string' || typeof body.to === 'number' ? String(body.to) : '';
      if (!DN.test(from) || !NUMBER.test(to)) {
        throw new HttpError(400, 'expected {"from": "<DN>", "to": "<number>"}');
      }
      const result = makeCall.start(from, to);
      if (!result.ok) throw new HttpError(result.status, result.error);
      return { status: 201, json: callView(result.call) };
    });
  }
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
  if (!control) return;
  const answer = (result: ControlResult): { status: number; json: unknown } => {
    if (!result.ok) throw new HttpError(result.status, result.error);
    return { status: result.status, json: result.json };
  };
  router
    .add('POST', '/calls/{id}/hold', async ({ req, params }) => {
      const call = find(params.id);
      return answer(await control.hold(call, field(await readJson(req, true), 'dn', DN)));
    })
    .add('POST', '/calls/{id}/retrieve', async ({ req, params }) => {
      const call = find(params.id);
      return answer(await control.retrieve(call, field(await readJson(req, true), 'dn', DN)));
    })
    .add('POST', '/calls/{id}/transfer', async ({ req, params }) => {
      const call = find(params.id);
      const body = await readJson(req);
      const to = field(body, 'to', NUMBER);
      if (to === undefined) throw new HttpError(400, 'expected {"to": "<number>"} (and optionally "dn": the transferring party)');
      return answer(await control.transfer(call, to, field(body, 'dn', DN)));
    });
}

/**
 * A JSON object request body of at most 64 KiB; anything else is a 400 (413 when too big).
 * With `optional`, an empty body reads as {}.
 */
async function readJson(req: IncomingMessage, optional = false): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > 65_536) throw new HttpError(413, 'request body too large');
    chunks.push(chunk);
  }
  if (optional && size === 0) return {};
  let value: unknown;
  try {
    value = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new HttpError(400, 'request body is not JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new HttpError(400, 'request body must be a JSON object');
  return value as Record<string, unknown>;
}
