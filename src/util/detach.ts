/**
 * A copy of `s` that shares no memory with the string it was cut from. V8 represents a
 * substring of a long string as a slice that keeps the whole parent alive: a binding that
 * keeps its Contact and Call-ID as slices keeps the whole REGISTER's text with them, for as
 * long as the registration lasts.
 */
export function detach(s: string): string {
  // Concatenating makes a cons string; slicing that flattens it into a new string of its own
  // and cuts from it: one copy, ~4x cheaper than a round trip through a Buffer (the memory
  // left after a collection is the same: tested with 1 MB parents).
  return (' ' + s).slice(1);
}
