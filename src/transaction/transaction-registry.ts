import { cseqOf } from '../sip/cseq.js';
import type { SipResponse } from '../sip/message.js';
import type { Source } from '../transport/types.js';
import type { Clock } from '../util/clock.js';
import type { TypedEvents } from '../util/typed-events.js';
import type { InviteClientTransaction } from './invite-client.js';
import type { InviteServerTransaction } from './invite-server.js';
import type { NonInviteClientTransaction } from './non-invite-client.js';
import type { NonInviteServerTransaction } from './non-invite-server.js';
import type { TransactionCounts, TransactionLayerEvents, TransactionStats } from './transaction-events.js';
import { TRANSACTION_KINDS, type TerminationReason, type Transaction, type TransactionKind } from './types.js';

type AnyClient = InviteClientTransaction | NonInviteClientTransaction;
type AnyServer = InviteServerTransaction | NonInviteServerTransaction;

const zeroCounts = (): TransactionCounts => ({ 'invite-client': 0, 'non-invite-client': 0, 'invite-server': 0, 'non-invite-server': 0 });

/**
 * The transaction tables and counters of one TransactionLayer, and the events that report
 * changes to them. Terminated transactions leave the tables here.
 */
export class TransactionRegistry {
  private readonly clientTable = new Map<string, AnyClient>();
  private readonly serverTable = new Map<string, AnyServer>();
  /** RFC 2543 INVITE server transactions by legacyAckKey(), and the reverse. */
  private readonly legacyAcks = new Map<string, InviteServerTransaction>();
  private readonly legacyAckKeyOf = new Map<Transaction, string>();
  private readonly live = zeroCounts();
  private readonly created = zeroCounts();
  private readonly ended: Record<TerminationReason, number> = { completed: 0, timeout: 0, 'transport-error': 0, closed: 0 };
  private absorbedCount = 0;
  private strayCount = 0;
  private droppedCount = 0;

  constructor(
    private readonly clock: Clock,
    private readonly events: TypedEvents<TransactionLayerEvents>,
  ) {}

  client(id: string): AnyClient | undefined {
    return this.clientTable.get(id);
  }

  server(id: string): AnyServer | undefined {
    return this.serverTable.get(id);
  }

  clients(): AnyClient[] {
    return [...this.clientTable.values()];
  }

  servers(): AnyServer[] {
    return [...this.serverTable.values()];
  }

  legacyAckTarget(key: string): InviteServerTransaction | undefined {
    return this.legacyAcks.get(key);
  }

  addClient(tx: AnyClient): void {
    this.clientTable.set(tx.id, tx);
    this.added(tx);
  }

  addServer(tx: AnyServer, legacyAckKey: string | undefined): void {
    this.serverTable.set(tx.id, tx);
    if (legacyAckKey !== undefined && tx.kind === 'invite-server') {
      this.legacyAcks.set(legacyAckKey, tx);
      this.legacyAckKeyOf.set(tx, legacyAckKey);
    }
    this.added(tx);
  }

  private added(tx: Transaction): void {
    this.live[tx.kind]++;
    this.created[tx.kind]++;
    this.events.emit('created', { id: tx.id, kind: tx.kind, method: tx.method, state: tx.state, active: { ...this.live } });
  }

  stateChanged(tx: Transaction, from: string, to: string): void {
    this.events.emit('stateChanged', { id: tx.id, kind: tx.kind, method: tx.method, from, to });
  }

  /** Takes a terminated transaction out of the tables (only if it is the one registered). */
  remove(tx: Transaction, reason: TerminationReason): void {
    const table: Map<string, Transaction> = tx.kind === 'invite-client' || tx.kind === 'non-invite-client' ? this.clientTable : this.serverTable;
    if (table.get(tx.id) !== tx) return;
    table.delete(tx.id);
    const legacy = this.legacyAckKeyOf.get(tx);
    if (legacy !== undefined) {
      this.legacyAckKeyOf.delete(tx);
      if (this.legacyAcks.get(legacy) === tx) this.legacyAcks.delete(legacy);
    }
    this.live[tx.kind]--;
    this.ended[reason]++;
    this.events.emit('terminated', {
      id: tx.id,
      kind: tx.kind,
      method: tx.method,
      reason,
      durationMs: this.clock.now() - tx.createdAt,
      active: { ...this.live },
    });
  }

  absorbed(tx: Transaction): void {
    this.absorbedCount++;
    this.events.emit('retransmissionAbsorbed', { id: tx.id, kind: tx.kind, method: tx.method });
  }

  stray(res: SipResponse, source: Source): void {
    this.strayCount++;
    let method: string | undefined;
    try {
      method = cseqOf(res).method;
    } catch {
      method = undefined; // a stray response without a usable CSeq is still counted
    }
    this.events.emit('strayResponse', { status: res.status, method, source });
  }

  dropped(event: { reason: string; source: Source }): void {
    this.droppedCount++;
    this.events.emit('messageDropped', event);
  }

  stats(): TransactionStats {
    const byState = Object.fromEntries(TRANSACTION_KINDS.map((k) => [k, {}])) as Record<TransactionKind, Record<string, number>>;
    for (const tx of [...this.clientTable.values(), ...this.serverTable.values()]) {
      const states = byState[tx.kind];
      states[tx.state] = (states[tx.state] ?? 0) + 1;
    }
    return {
      active: { ...this.live },
      byState,
      created: { ...this.created },
      terminated: { ...this.ended },
      retransmissionsAbsorbed: this.absorbedCount,
      strayResponses: this.strayCount,
      messagesDropped: this.droppedCount,
    };
  }
}
