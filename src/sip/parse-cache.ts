/**
 * Parsed views of header values, by the value's text. A message's top Via, From, To, CSeq
 * and URIs are read many times on their way through the server — by the validator, the
 * transport (received/rport), transaction matching, the dialog and the call — and each read
 * used to parse the text again (issue 14: ~6 parses of every top Via, a third of all memory
 * allocated). A view is a pure function of its text, so one parse serves them all; the views
 * are shared and therefore read-only (their types say so: Params is a ReadonlyMap). A text
 * that does not parse is not kept: it throws again, with the caller's reason.
 *
 * Bounded: when full the cache starts again empty, so a flood of distinct values costs at
 * most `limit` entries (each key may hold the header section it was cut from, ~1 KB).
 */
export class ParseCache<T> {
  private readonly views = new Map<string, T>();
  /** The text asked for last and its view: the same header read again at once costs no lookup. */
  private lastText: string | undefined;
  private lastView: T | undefined;

  constructor(private readonly limit = 1024) {}

  get(text: string, parse: (text: string) => T): T {
    if (text === this.lastText) return this.lastView as T;
    let view = this.views.get(text);
    if (view === undefined) {
      view = parse(text);
      if (this.views.size >= this.limit) this.views.clear();
      this.views.set(text, view);
    }
    this.lastText = text;
    this.lastView = view;
    return view;
  }
}

/** A type's fields made writable again, for the parser that builds a read-only view. */
export type Building<T> = { -readonly [K in keyof T]: T[K] };
