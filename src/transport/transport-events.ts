import type { CloseCause, Flow, FlowOrigin, StreamTransport } from './flow.js';
import type { ReceivedMessage, Source, TransportName } from './types.js';

/** Every change of a flow's state, and every message in or dropped, as typed events. */
export interface TransportEvents extends Record<string, unknown> {
  message: ReceivedMessage;
  messageDropped: { source: Source; reason: string };
  connectionOpened: {
    flow: Flow;
    id: string;
    transport: StreamTransport;
    origin: FlowOrigin;
    remoteAddress: string;
    remotePort: number;
    localAddress: string;
    localPort: number;
  };
  connectionClosed: {
    /** The flow, closed; its close listeners have run. */
    flow: Flow;
    id: string;
    transport: StreamTransport;
    origin: FlowOrigin;
    remoteAddress: string;
    remotePort: number;
    closedBy: CloseCause;
    /** Why: "remote closed", "error: ECONNRESET", "unframeable: …", "server stopping", … */
    cause: string;
    errorCode?: string;
  };
  connectionFailed: { transport: TransportName; address: string; port: number; code: string; reason: string };
  connectionRefused: { transport: TransportName; address: string; port: number; reason: string };
}
