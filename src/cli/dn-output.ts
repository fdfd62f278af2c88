import type { ContactView, DnView } from '../api/views.js';
import { duration, formatFields, formatTable, secondsSince, time, type Column } from './tables.js';

/** One line of the DN table: a DN with its first contact, or one more contact of the DN above. */
interface DnLine {
  dn?: DnView;
  contact: string | null;
}

const DN_COLUMNS: Column<DnLine>[] = [
  { header: 'NUMBER', value: (l) => (l.dn ? l.dn.number : '') },
  { header: 'TYPE', value: (l) => (l.dn ? l.dn.type : '') },
  { header: 'STATE', value: (l) => (l.dn ? l.dn.state : '') },
  { header: 'SINCE', value: (l) => (l.dn ? time(l.dn.since) : '') },
  { header: 'REASON', value: (l) => (l.dn ? l.dn.reason || null : '') },
  { header: 'CONTACTS', value: (l) => l.contact },
];

/** GET /dns as a table: number, type, state, since, reason and contacts (one line each). */
export function dnTable(dns: readonly DnView[]): string {
  if (dns.length === 0) return 'no DNs configured';
  const lines = dns.flatMap((dn): DnLine[] => {
    const contacts = shownContacts(dn);
    const [first, ...more] = contacts;
    return [{ dn, contact: first ?? null }, ...more.map((contact) => ({ contact }))];
  });
  return formatTable(DN_COLUMNS, lines);
}

/** A DN's registered contacts, or its fixed contact; none for a registering DN with no registration. */
function shownContacts(dn: DnView): string[] {
  if ((dn.contacts ?? []).length > 0) return dn.contacts.map((c) => c.contact);
  return dn.contact && dn.contact !== '*' ? [dn.contact] : [];
}

const CONTACT_COLUMNS: Column<ContactView>[] = [
  { header: 'CONTACT', value: (c) => c.contact },
  { header: 'TRANSPORT', value: (c) => c.transport },
  { header: 'SOURCE', value: (c) => c.source },
  { header: 'EXPIRES', value: (c) => duration(c.expires), right: true },
  { header: 'FLOW', value: (c) => c.flowId },
  { header: 'FLOW-STATE', value: (c) => c.flowState },
  { header: 'REGISTERED', value: (c) => time(c.registeredAt) },
];

/** GET /dns/{dn}: its fields, options and a table of its registered contacts. */
export function dnDetail(dn: DnView, now: number): string {
  const since = secondsSince(dn.since, now);
  const o = dn.options ?? {};
  const fields = formatFields([
    ['number', dn.number],
    ['type', dn.type],
    ['state', dn.state],
    ['since', `${time(dn.since)}${since === undefined ? '' : ` (${duration(since)} ago)`}`],
    ['reason', dn.reason || null],
    ['contact', dn.contact === '*' ? '* (registers)' : dn.contact],
    ['oos-check', o['oos-check']],
    ['oos-force', o['oos-force']],
    ['prefix', o.prefix],
    ['priority', o.priority],
    ['service-type', o['service-type']],
  ]);
  const contacts = dn.contacts ?? [];
  const table = contacts.length === 0 ? (dn.contact === '*' ? 'no registered contacts' : '') : formatTable(CONTACT_COLUMNS, contacts);
  return table === '' ? fields : `${fields}\n\n${table}`;
}
