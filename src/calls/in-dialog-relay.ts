import { getHeader, getHeaderValues, type SipHeader, type SipRequest, type SipResponse } from '../sip/message.js';
import { createResponse } from '../sip/response.js';
import type { FinalInfo, ServerTransaction } from '../transaction/types.js';
import { newTag } from '../util/ids.js';
import type { Logger } from '../util/logger.js';
import { dnOf, type Call } from './call.js';
import type { CallControl } from './call-control.js';
import { isHoldSdp } from './sdp.js';
import type { CallManager } from './call-manager.js';
import type { PhoneTransfer } from './phone-transfer.js';

/**
 * Requests inside a call's dialogs (SPEC §6): BYE from either side ends the call (200 here,
 * BYE on the other leg); re-INVITE, UPDATE, INFO, OPTIONS and any other method pass to the
 * other leg and its final response comes back. A re-INVITE while one is pending on the call
 * gets 491 (glare). SDP that puts the media on hold (sendonly/inactive) or takes it off again
 * gives EventHeld / EventRetrieved.
 */
export class InDialogRelay {
  constructor(
    private readonly calls: CallManager,
    private readonly control: Pick<CallControl, 'onTransferDialogRequest'>,
    private readonly phoneTransfers: Pick<PhoneTransfer, 'transferring' | 'onRefer' | 'onDialogRequest'>,
    private readonly log: Logger,
  ) {}

  onRequest(tx: ServerTransaction, req: SipRequest): void {
    const found = this.calls.findByDialog(req);
    const reply = (status: number, reason?: string, extra: { headers?: SipHeader[]; body?: Buffer; toTag?: string } = {}): void =>
      tx.respond(createResponse(req, status, reason, { toTag: extra.toTag ?? newTag(), ...extra }));
    if (!found) {
      reply(481);
      return;
    }
    const { call, leg } = found;
    if (call.transfer && (leg === call.transfer.transferee || call.transfer.accepted)) {
      this.control.onTransferDialogRequest(call, leg, tx, req);
      return;
    }
    if (this.phoneTransfers.transferring(call)) {
      this.phoneTransfers.onDialogRequest(call, leg, tx, req);
      return;
    }
    // A phone's transfer button: the server carries the transfer out (the other party need not support REFER).
    if (req.method === 'REFER') {
      this.phoneTransfers.onRefer(call, leg, tx, req);
      return;
    }
    const dialog = call[leg].dialog;
    const other = leg === 'a' ? 'b' : 'a';
    const target = call[other].dialog;
    if (dialog && !target && req.method === 'BYE' && dialog.acceptRemote(req)) {
      // MakeCall: `from` hangs up while `to` still rings; `to` gets CANCEL.
      reply(200, 'OK', { toTag: dialog.localTag });
      this.calls.abandon(call);
      return;
    }
    if (!dialog || !target) {
      reply(481);
      return;
    }
    if (!dialog.acceptRemote(req)) {
      reply(500, 'CSeq Out of Order', { toTag: dialog.localTag });
      return;
    }
    if (req.method === 'BYE') {
      reply(200, 'OK', { toTag: dialog.localTag });
      const reason = getHeaderValues(req, 'reason');
      this.calls.bye(call, other, reason.map((value) => ({ name: 'Reason', value })));
      this.calls.release(call, 'normal', undefined, { by: leg === 'a' ? 'caller' : 'callee' });
      return;
    }
    const isInvite = req.method === 'INVITE';
    if (isInvite && call.reinvitePending) {
      reply(491, undefined, { toTag: dialog.localTag, headers: [{ name: 'Retry-After', value: '1' }] });
      return;
    }
    const contentType = getHeader(req, 'content-type');
    const out = target.createRequest(req.method, { body: req.body, ...(contentType !== undefined ? { contentType } : {}) });
    const offer = (isInvite || req.method === 'UPDATE') && req.body.length > 0;
    const onFinal = (res: SipResponse, info: FinalInfo): void => {
      const accepted = res.status >= 200 && res.status < 300;
      if (offer && accepted) {
        call.sdpTo[other] = req.body;
        if (res.body.length > 0) call.sdpTo[leg] = res.body;
      }
      if (isInvite && accepted) this.noteHold(call, leg, req.body);
      const type = getHeader(res, 'content-type');
      const headers: SipHeader[] = [];
      if (isInvite && res.status < 300) headers.push({ name: 'Contact', value: dialog.localContact });
      if (res.body.length > 0 && type !== undefined) headers.push({ name: 'Content-Type', value: type });
      const answer = createResponse(req, res.status, res.reason, { toTag: dialog.localTag, headers, body: res.body });
      if (isInvite && res.status >= 200 && res.status < 300) {
        // The 2xx to a re-INVITE is retransmitted until ACKed like any other (§13.3.1.4).
        call[leg].sendOk(tx, answer, () => this.log.warn({ call: call.id }, 'no ACK for a re-INVITE 2xx'));
      } else {
        tx.respond(answer);
        // The other party is gone (no answer, its connection lost, 481): end the call.
        this.calls.legFailed(call, other, res, info);
      }
    };
    // A relayed INVITE is pending on the other leg until its final response (a second one gets 491); its 2xx is ACKed there.
    if (isInvite) call[other].sendInvite(out, onFinal);
    else call[other].send(out, onFinal);
  }

  private noteHold(call: Call, leg: 'a' | 'b', sdp: Buffer): void {
    if (sdp.length === 0) return;
    const hold = isHoldSdp(sdp);
    const dn = dnOf(call, leg);
    const otherDn = dnOf(call, leg === 'a' ? 'b' : 'a');
    if (hold && !call.heldBy) {
      call.heldBy = { leg, by: 'party' };
      this.calls.emit('EventHeld', call, dn, otherDn);
    } else if (!hold && call.heldBy?.by === 'party') {
      call.heldBy = undefined;
      this.calls.emit('EventRetrieved', call, dn, otherDn);
    }
  }
}
