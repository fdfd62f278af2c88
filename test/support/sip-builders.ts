/**
 * Builds SIP messages as plain objects for unit tests, so tests do not depend on the parser.
 */
import { SIP_VERSION, type SipHeader, type SipRequest, type SipResponse } from '../../src/sip/message.js';
import { createResponse } from '../../src/sip/response.js';
import type { Destination, Source, TransportName } from '../../src/transport/types.js';
import { FakeFlow } from './fake-transport.js';

export interface RequestSpec {
  method?: string;
  uri?: string;
  /** Top Via branch; null for an RFC 2543 request without one. Default: a fixed cookie branch. */
  branch?: string | null;
  /** Top Via sent-by, "host:port". */
  sentBy?: string;
  transport?: TransportName;
  callId?: string;
  fromTag?: string;
  /** To tag; absent for an initial request. */
  toTag?: string;
  cseq?: number;
  /** CSeq method, when it must differ from `method`. */
  cseqMethod?: string;
  /** Route header values, in order. */
  routes?: string[];
  /** Extra Via values below the top one. */
  lowerVias?: string[];
  headers?: SipHeader[];
}

export function request(spec: RequestSpec = {}): SipRequest {
  const method = spec.method ?? 'INVITE';
  const transport = spec.transport ?? 'UDP';
  const branch = spec.branch === undefined ? 'z9hG4bK-test-1' : spec.branch;
  const via = `SIP/2.0/${transport} ${spec.sentBy ?? '192.0.2.1:5060'}${branch === null ? '' : `;branch=${branch}`}`;
  const headers: SipHeader[] = [{ name: 'Via', value: via }];
  for (const v of spec.lowerVias ?? []) headers.push({ name: 'Via', value: v });
  headers.push({ name: 'Max-Forwards', value: '70' });
  for (const r of spec.routes ?? []) headers.push({ name: 'Route', value: r });
  headers.push(
    { name: 'From', value: `"Alice" <sip:alice@example.com>;tag=${spec.fromTag ?? 'from-1'}` },
    { name: 'To', value: `<sip:bob@example.com>${spec.toTag === undefined ? '' : `;tag=${spec.toTag}`}` },
    { name: 'Call-ID', value: spec.callId ?? 'call-1@192.0.2.1' },
    { name: 'CSeq', value: `${spec.cseq ?? 1} ${spec.cseqMethod ?? method}` },
    { name: 'Contact', value: '<sip:alice@192.0.2.1:5060>' },
    ...(spec.headers ?? []),
  );
  return { kind: 'request', version: SIP_VERSION, method, uri: spec.uri ?? 'sip:bob@example.com', headers, body: Buffer.alloc(0) };
}

/** A response to `req` (createResponse), with a To tag for anything above 100. */
export function response(req: SipRequest, status: number, toTag = 'to-1'): SipResponse {
  return createResponse(req, status, undefined, status > 100 ? { toTag } : {});
}

const namedFlows = new Map<string, FakeFlow>();

/** The same open flow for the same name (as a phone's connection is one object), made on first use. */
export function flowNamed(id: string, transport: 'TCP' | 'TLS' = 'TCP', port = 5060): FakeFlow {
  let flow = namedFlows.get(id);
  if (!flow) {
    flow = new FakeFlow(id, transport, '192.0.2.1', port, 'accepted');
    namedFlows.set(id, flow);
  }
  return flow;
}

export function source(transport: TransportName = 'UDP', extra: Partial<Source> = {}): Source {
  return {
    transport,
    address: '192.0.2.1',
    port: 5060,
    localAddress: '127.0.0.1',
    localPort: 5060,
    ...(transport === 'UDP' ? {} : { flow: flowNamed(`${transport.toLowerCase()}-in-1`, transport) }),
    ...extra,
  };
}

export function destination(transport: TransportName = 'UDP', extra: Partial<Destination> = {}): Destination {
  return { transport, address: '192.0.2.2', port: 5060, ...extra };
}
