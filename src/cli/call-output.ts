import type { CallView, ReleasedCallView } from '../api/call-routes.js';
import { duration, formatFields, formatTable, secondsSince, time, type Column } from './tables.js';

type Leg = CallView['legs']['caller'] | ReleasedCallView['legs']['caller'];

/** A leg, short: "TCP 127.0.0.1:40123" (what is known of it). */
function legText(leg: Leg | undefined): string | null {
  const parts = [leg?.transport, leg?.remote].filter((p) => p !== null && p !== undefined && p !== '');
  return parts.length === 0 ? null : parts.join(' ');
}

/** The caller: the DN the server vouches for, else the number presented (marked unverified). */
function fromText(call: CallView | ReleasedCallView): string | null {
  if (call.from !== null && call.from !== undefined) return call.from;
  return call.caller ? `${call.caller} (unverified)` : null;
}

/** The number dialled, and the DN it reached when that is another (a trunk, a voip-service). */
function toText(call: CallView | ReleasedCallView): string {
  return call.calleeDn && call.calleeDn !== call.to ? `${call.to} via ${call.calleeDn}` : call.to;
}

function stateText(call: CallView): string {
  return call.held ? `${call.state} (held)` : call.state;
}

function columns(now: number): Column<CallView>[] {
  return [
    { header: 'ID', value: (c) => c.id },
    { header: 'STATE', value: stateText },
    { header: 'FROM', value: fromText },
    { header: 'TO', value: toText },
    { header: 'CALLER-LEG', value: (c) => legText(c.legs?.caller) },
    { header: 'CALLEE-LEG', value: (c) => legText(c.legs?.callee) },
    { header: 'STARTED', value: (c) => time(c.startedAt) },
    { header: 'DURATION', value: (c) => duration(secondsSince(c.startedAt, now)), right: true },
  ];
}

/** GET /calls as a table: id, state, caller and callee with their legs, start time and duration. */
export function callTable(calls: readonly CallView[], now: number): string {
  if (calls.length === 0) return 'no calls in progress';
  return formatTable(columns(now), calls);
}

interface LegLine {
  name: string;
  leg: Leg | undefined;
}

const LEG_COLUMNS: Column<LegLine>[] = [
  { header: 'LEG', value: (l) => l.name },
  { header: 'DN', value: (l) => l.leg?.dn },
  { header: 'TRANSPORT', value: (l) => l.leg?.transport },
  { header: 'REMOTE', value: (l) => l.leg?.remote },
  { header: 'FLOW', value: (l) => (l.leg && 'flowId' in l.leg ? l.leg.flowId : null) },
  { header: 'CALL-ID', value: (l) => l.leg?.callId },
];

/** GET /calls/{id}: a call in progress, or the record of one that ended, then its two legs. */
export function callDetail(call: CallView | ReleasedCallView, now: number): string {
  const released = call.state === 'released' ? (call as ReleasedCallView) : undefined;
  const end = released?.endedAt ? Date.parse(released.endedAt) : now;
  const fields: [string, string | number | null | undefined][] = [
    ['id', call.id],
    ['state', released ? 'released' : stateText(call as CallView)],
    ['from', fromText(call)],
    ['caller number', call.caller || null],
    ['to', call.to],
    ['callee DN', call.calleeDn],
    ['started', time(call.startedAt)],
    ['answered', time(call.answeredAt)],
  ];
  if (released) {
    fields.push(
      ['ended', time(released.endedAt)],
      ['cause', released.cause],
      ['status', released.status],
      ['released by', released.releasedBy],
      ['transferred to', released.transferredTo],
      ['new call', released.newCallId],
    );
  }
  const talk = call.answeredAt ? secondsSince(call.answeredAt, end) : undefined;
  fields.push(['duration', duration(secondsSince(call.startedAt, end))], ['talk time', talk === undefined ? null : duration(talk)]);
  const legs = formatTable(LEG_COLUMNS, [
    { name: 'caller', leg: call.legs?.caller },
    { name: 'callee', leg: call.legs?.callee },
  ]);
  return `${formatFields(fields)}\n\n${legs}`;
}

/** The answer to DELETE /calls/{id}. */
export interface ReleaseAnswer {
  id: string;
  state: string;
  cause: string | null;
}

export function releaseText(r: ReleaseAnswer): string {
  return `call ${r.id} released (state ${r.state}, cause ${r.cause ?? '-'})`;
}
