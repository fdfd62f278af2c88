/**
 * A copy of `s` that shares no memory with the string it was cut from. V8 represents a
 * substring of a long string as a slice that keeps the whole parent alive: a binding that
 * keeps its Contact and Call-ID as slices keeps the whole REGISTER's text with them, for as
 * long as the registration lasts.
 */
export function detach(s: string): string {
  return Buffer.from(s, 'utf8').toString('utf8');
}
