import { calleeDn, legsOf, type Call } from '../calls/call.js';
import type { CallRecord, CallRecordLeg } from '../registrar/binding.js';
import type { CallManager } from '../calls/call-manager.js';
import type { IncomingMessage } from 'node:http';
import type { CallControl, ControlResult } from '../calls/call-control.js';
import type { MakeCall } from '../calls/make-call.js';
import { HttpError } from './http-error.js';
import { readBody } from './read-body.js';
import type { Router } from './router.js';
import type { CallRecordQuery } from '../registrar/store.js';
import { isoTime } from './views.js';

/** What the control API uses of the call manager. */
export type CallsView = Pick<CallManager, 'all' | 'get' | 'releaseCall' | 'record' | 'records'>;

interface LegView {
  /** Call-ID of the leg's dialog (of its INVITE while it rings); null before there is one. */
  callId: string | null;
  transport: string | null;
  /** The party's address, "address:port"; null when not known. */
  remote: string | null;
  dn: string | null;
  flowId: string | null;
}

export interface CallView {
  id: string;
  /** The caller's DN; null when the caller is no DN the server can vouch for. */
  from: string | null;
  /** The caller's number as presented to the callee. */
  caller: string;
  to: string;
  /** The DN the call reached (or is trying): an extension, trunk or voip-service. */
  calleeDn: string;
  state: Call['state'];
  held: boolean;
  startedAt: string;
  answeredAt: string | null;
  legs: { caller: LegView; callee: LegView };
}

/** A call that has ended, from its record: the same shape, with how and when it ended. */
export interface ReleasedCallView extends Omit<CallView, 'held' | 'legs'> {
  state: 'released';
  endedAt: string | null;
  cause: string | null;
  status: number | null;
  releasedBy: CallRecord['releasedBy'] | null;
  transferredTo: string | null;
  newCallId: string | null;
  legs: { caller: Omit<LegView, 'flowId'>; callee: Omit<LegView, 'flowId'> };
}

function legView(leg: CallRecordLeg): Omit<LegView, 'flowId'> {
  return { callId: leg.callId ?? null, transport: leg.transport ?? null, remote: leg.remote ?? null, dn: leg.dn ?? null };
}

export function callView(call: Call): CallView {
  const legs = legsOf(call);
  return {
    id: call.id,
    from: call.from,
    caller: call.caller,
    to: call.to,
    calleeDn: calleeDn(call),
    state: call.state,
    held: call.heldBy !== undefined,
    startedAt: isoTime(call.startedAt),
    answeredAt: call.answeredAt === undefined ? null : isoTime(call.answeredAt),
    legs: {
      caller: { ...legView(legs.caller), flowId: (call.a.tx?.source.flow ?? call.a.outTx?.flow?.flow ?? call.a.dialog?.destination.flow)?.id ?? null },
      callee: { ...legView(legs.callee), flowId: (call.b.tx?.flow?.flow ?? call.b.dialog?.destination.flow)?.id ?? null },
    },
  };
}

export function releasedCallView(r: CallRecord): ReleasedCallView {
  return {
    id: r.id,
    from: r.fromDn,
    caller: r.caller ?? r.fromDn ?? '',
    to: r.toDn,
    calleeDn: r.legs?.callee.dn ?? r.toDn,
    state: 'released',
    startedAt: isoTime(r.startedAt),
    answeredAt: r.answeredAt === undefined ? null : isoTime(r.answeredAt),
    endedAt: r.endedAt === undefined ? null : isoTime(r.endedAt),
    cause: r.cause ?? null,
    status: r.status ?? null,
    releasedBy: r.releasedBy ?? null,
    transferredTo: r.transferredTo ?? null,
    newCallId: r.newCallId ?? null,
    legs: {
      caller: legView(r.legs?.caller ?? { ...(r.callId !== undefined ? { callId: r.callId } : {}), ...(r.fromDn !== null ? { dn: r.fromDn } : {}) }),
      callee: legView(r.legs?.callee ?? { dn: r.toDn }),
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
 * POST /calls (MakeCall), GET /calls, GET /calls/{id} (a call in progress, else the record of
 * one that ended), GET /call-records (ended calls, newest first), DELETE /calls/{id}
 * (ReleaseCall, cause "administrative").
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
    .add('GET', '/calls/{id}', async ({ params }) => {
      const live = params.id === undefined ? undefined : calls.get(params.id);
      if (live) return { status: 200, json: callView(live) };
      // A call that has ended is served from its record (kept in the store).
      const record = params.id === undefined ? undefined : await calls.record(params.id);
      if (!record) throw new HttpError(404, `unknown call ${params.id ?? ''}`);
      return { status: 200, json: releasedCallView(record) };
    })
    .add('GET', '/call-records', async ({ url }) => ({ status: 200, json: (await calls.records(recordQuery(url))).map(releasedCallView) }))
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

/** ?dn=&since=&limit= of GET /call-records: a DN, an ISO time or ms since the epoch, 1–1000 (default 100). */
function recordQuery(url: URL): CallRecordQuery {
  const q: CallRecordQuery = {};
  const dn = url.searchParams.get('dn');
  if (dn !== null) {
    if (!DN.test(dn)) throw new HttpError(400, '"dn" must be a DN');
    q.dn = dn;
  }
  const since = url.searchParams.get('since');
  if (since !== null) {
    const ms = /^\d+$/.test(since) ? Number(since) : Date.parse(since);
    if (!Number.isFinite(ms)) throw new HttpError(400, '"since" must be an ISO 8601 time or milliseconds since the epoch');
    q.since = ms;
  }
  const limit = url.searchParams.get('limit');
  if (limit !== null) {
    if (!/^\d{1,4}$/.test(limit) || Number(limit) < 1 || Number(limit) > 1000) throw new HttpError(400, '"limit" must be 1–1000');
    q.limit = Number(limit);
  }
  return q;
}

/**
 * A JSON object request body of at most 64 KiB; anything else is a 400 (413 when too big).
 * With `optional`, an empty body reads as {}.
 */
async function readJson(req: IncomingMessage, optional = false): Promise<Record<string, unknown>> {
  const body = await readBody(req, 65_536);
  if (optional && body.length === 0) return {};
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch {
    throw new HttpError(400, 'request body is not JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new HttpError(400, 'request body must be a JSON object');
  return value as Record<string, unknown>;
}
