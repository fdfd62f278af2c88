import { getHeader, getHeaderValues, type SipHeader, type SipRequest } from '../sip/message.js';
import { tagOf } from '../sip/name-addr.js';
import { createResponse } from '../sip/response.js';
import { parseUri } from '../sip/uri.js';
import type { ServerTransaction } from '../transaction/types.js';
import { newTag } from '../util/ids.js';
import type { Logger } from '../util/logger.js';

/** A handler for requests of one method; it must answer through `tx`. */
export type RequestHandler = (tx: ServerTransaction, req: SipRequest) => void;

/** Methods this server knows of (RFC 3261 and common extensions). Others get 501. */
const KNOWN_METHODS = new Set([
  'INVITE', 'ACK', 'BYE', 'CANCEL', 'OPTIONS', 'REGISTER', 'PRACK', 'SUBSCRIBE', 'NOTIFY',
  'PUBLISH', 'INFO', 'REFER', 'MESSAGE', 'UPDATE',
]);

/** Session bodies an INVITE may carry: SDP, possibly inside multipart/mixed (RFC 5621). */
const ACCEPTED_BODIES = ['application/sdp', 'multipart/mixed'];

/**
 * Option tags this server supports (Supported): the registrar's RFC 3327 Path and RFC 5626
 * outbound. A Require outside the set for its method gets 420; these two mean something to a
 * REGISTER only.
 */
const SUPPORTED_EXTENSIONS: string[] = ['path', 'outbound'];
const REGISTER_EXTENSIONS = new Set(SUPPORTED_EXTENSIONS);

/**
 * The UAS core (RFC 3261 §8.2): checks every new request that is not a retransmission, then
 * hands it to the handler registered for its method. Every request gets a final response:
 * 416 for a Request-URI scheme it cannot handle, 420 for an unknown Require, 483 for
 * Max-Forwards 0 on a request for a user (the server would pass it on; REGISTER and requests
 * to the server itself, such as OPTIONS sip:host, are answered here), 415 / 406 for an INVITE whose body or Accept is not SDP, 501 for an
 * unknown method, 405 (with Allow) for a known method nobody serves yet, 481 for CANCEL of a
 * transaction that does not exist, and 200 for OPTIONS to the server itself.
 */
export class UaCore {
  private readonly handlers = new Map<string, RequestHandler>();
  private inDialog: RequestHandler | undefined;
  /** The methods the in-dialog handler serves (listed in Allow with those of `handlers`). */
  private inDialogMethods: string[] = [];

  constructor(private readonly log: Logger) {
    this.handlers.set('OPTIONS', (tx, req) => this.answerOptions(tx, req));
  }

  /** Registers the handler for a method; later layers (registrar, calls) plug in here. */
  handle(method: string, handler: RequestHandler): void {
    this.handlers.set(method.toUpperCase(), handler);
  }

  /**
   * Registers the handler for requests inside a dialog (a To tag); without one they get 481.
   * `methods` are those it serves (e.g. BYE, re-INVITE, UPDATE): Allow lists them too, since
   * a request with a To tag never reaches the per-method handlers.
   */
  handleInDialog(handler: RequestHandler, methods: readonly string[]): void {
    this.inDialog = handler;
    this.inDialogMethods = methods.map((m) => m.toUpperCase());
  }

  /** The Allow header value: the methods that have a handler, in a dialog or out of one, plus ACK and CANCEL. */
  allow(): string {
    return [...new Set(['ACK', 'CANCEL', ...this.handlers.keys(), ...this.inDialogMethods])].sort().join(', ');
  }

  /** Entry point for a new server transaction (the transaction layer's onRequest). */
  onRequest(tx: ServerTransaction, req: SipRequest): void {
    const reply = (status: number, headers: SipHeader[] = [], reason?: string): void =>
      tx.respond(createResponse(req, status, reason, { toTag: newTag(), headers }));

    const scheme = schemeOf(req.uri);
    if (scheme !== 'sip' && scheme !== 'sips' && scheme !== 'tel') {
      reply(416);
      return;
    }
    if (req.method !== 'ACK' && req.method !== 'CANCEL') {
      const unsupported = getHeaderValues(req, 'require').filter((t) => req.method !== 'REGISTER' || !REGISTER_EXTENSIONS.has(t.trim().toLowerCase()));
      if (unsupported.length > 0) {
        reply(420, [{ name: 'Unsupported', value: unsupported.join(', ') }]);
        return;
      }
    }
    if (req.method !== 'REGISTER' && !addressedToServer(req.uri) && getHeader(req, 'max-forwards')?.trim() === '0') {
      reply(483);
      return;
    }
    if (req.method === 'INVITE') {
      const type = mediaType(getHeader(req, 'content-type'));
      if (req.body.length > 0 && type !== undefined && !ACCEPTED_BODIES.includes(type)) {
        reply(415, [{ name: 'Accept', value: ACCEPTED_BODIES.join(', ') }]);
        return;
      }
      const accept = getHeaderValues(req, 'accept').map(mediaType);
      if (accept.length > 0 && !accept.some((a) => a === 'application/sdp' || a === 'application/*' || a === '*/*')) {
        reply(406, [{ name: 'Accept', value: 'application/sdp' }]);
        return;
      }
    }
    if (req.method !== 'CANCEL' && hasToTag(req)) {
      if (this.inDialog) this.inDialog(tx, req);
      else reply(481);
      return;
    }
    const handler = this.handlers.get(req.method);
    if (handler) {
      handler(tx, req);
      return;
    }
    if (req.method === 'CANCEL') reply(481);
    else if (KNOWN_METHODS.has(req.method)) reply(405, [{ name: 'Allow', value: this.allow() }]);
    else reply(501);
    this.log.debug({ method: req.method, callId: getHeader(req, 'call-id') }, 'request not served');
  }

  private answerOptions(tx: ServerTransaction, req: SipRequest): void {
    tx.respond(
      createResponse(req, 200, 'OK', {
        toTag: newTag(),
        headers: [
          { name: 'Allow', value: this.allow() },
          { name: 'Accept', value: 'application/sdp' },
          { name: 'Accept-Encoding', value: 'identity' },
          { name: 'Accept-Language', value: 'en' },
          { name: 'Supported', value: SUPPORTED_EXTENSIONS.join(', ') },
        ],
      }),
    );
  }
}

function hasToTag(req: SipRequest): boolean {
  try {
    return tagOf(getHeader(req, 'to')) !== undefined;
  } catch {
    return false;
  }
}

function mediaType(value: string | undefined): string | undefined {
  return value?.split(';')[0]?.trim().toLowerCase();
}

/** A SIP Request-URI without a user part names the server itself (e.g. OPTIONS sip:host). */
function addressedToServer(uri: string): boolean {
  try {
    const u = parseUri(uri);
    return u.kind === 'sip' && (u.user === undefined || u.user === '');
  } catch {
    return false;
  }
}

function schemeOf(uri: string): string {
  try {
    return parseUri(uri).scheme.toLowerCase();
  } catch {
    return uri.slice(0, Math.max(0, uri.indexOf(':'))).toLowerCase();
  }
}
