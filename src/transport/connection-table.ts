import type { Connection } from './connection.js';
import type { Flow } from './flow.js';
import type { TransportName } from './types.js';

/**
 * Every live TCP/TLS connection, by id and by transport + remote address. Lookups return
 * only `open` connections, newest first, so a connection that is closing is never reused.
 */
export class ConnectionTable {
  private readonly byId = new Map<string, Connection>();
  // Arrays, not Sets: almost every key has one connection and every connection one alias, and
  // at 100,000 connections a Set's hash table each is memory that shows.
  private readonly byRemote = new Map<string, Connection[]>();
  /** Extra keys under which a connection is also found (e.g. the peer's Via sent-by). */
  private readonly aliases = new Map<Connection, string[]>();
  private accepted = 0;

  static key(transport: TransportName, address: string, port: number): string {
    return `${transport}|${address.toLowerCase()}|${port}`;
  }

  /** The connection behind `flow` while it is open and still in this table. */
  open(flow: Flow): Connection | undefined {
    const conn = this.byId.get(flow.id);
    return conn === flow && conn.state === 'open' ? conn : undefined;
  }

  add(conn: Connection): void {
    if (this.byId.has(conn.id)) return;
    if (conn.origin === 'accepted') this.accepted++;
    this.byId.set(conn.id, conn);
    this.index(ConnectionTable.key(conn.transport, conn.remoteAddress, conn.remotePort), conn);
  }

  /**
   * Also finds `conn` under another address of the peer: a peer that opened a connection
   * and names its listening address in Via sent-by is reached back on that connection.
   */
  addAlias(conn: Connection, address: string, port: number): void {
    const key = ConnectionTable.key(conn.transport, address, port);
    let keys = this.aliases.get(conn);
    if (!keys) {
      keys = [];
      this.aliases.set(conn, keys);
    }
    if (keys.includes(key)) return;
    keys.push(key);
    this.index(key, conn);
  }

  remove(conn: Connection): void {
    if (this.byId.get(conn.id) !== conn) return;
    if (conn.origin === 'accepted') this.accepted--;
    this.byId.delete(conn.id);
    this.unindex(ConnectionTable.key(conn.transport, conn.remoteAddress, conn.remotePort), conn);
    for (const key of this.aliases.get(conn) ?? []) this.unindex(key, conn);
    this.aliases.delete(conn);
  }

  private index(key: string, conn: Connection): void {
    const list = this.byRemote.get(key);
    if (!list) this.byRemote.set(key, [conn]);
    else if (!list.includes(conn)) list.push(conn);
  }

  private unindex(key: string, conn: Connection): void {
    const list = this.byRemote.get(key);
    if (!list) return;
    const i = list.indexOf(conn);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) this.byRemote.delete(key);
  }

  /** An open connection to this remote transport address, the most recently active first. */
  find(transport: TransportName, address: string, port: number): Connection | undefined {
    const list = this.byRemote.get(ConnectionTable.key(transport, address, port));
    let best: Connection | undefined;
    for (const c of list ?? []) {
      if (c.state === 'open' && (!best || c.lastActivity > best.lastActivity)) best = c;
    }
    return best;
  }

  all(): Connection[] {
    return [...this.byId.values()];
  }

  get size(): number {
    return this.byId.size;
  }

  /** Connections the peers opened (what sip-max-connections bounds). */
  countAccepted(): number {
    return this.accepted;
  }
}
