/**
 * Answers worked out once, by the text asked. Used for the parsed views of header values (a
 * message's top Via, From, To, CSeq and URIs are read many times on their way through the
 * server: by the validator, the transport, transaction matching, the dialog and the call, and
 * each read used to parse again — issue 14: ~6 parses of every top Via, a third of all memory
 * allocated) and for address checks. The answer must be a pure function of the text; a view
 * is shared by every reader, so it is read-only (the sip views' types say so). A text whose
 * work throws is not kept: it throws again, with its caller's reason.
 *
 * Bounded: when full it starts again empty, so a flood of distinct texts costs at most `limit`
 * entries (each key may hold the header section it was cut from, ~1 KB).
 */
export class Memo<T> {
  private readonly answers = new Map<string, T>();
  /** The text asked for last and its answer: the same header read again at once costs no lookup. */
  private lastText: string | undefined;
  private lastAnswer: T | undefined;

  constructor(private readonly limit = 1024) {}

  get(text: string, work: (text: string) => T): T {
    if (text === this.lastText) return this.lastAnswer as T;
    let answer = this.answers.get(text);
    if (answer === undefined) {
      answer = work(text);
      if (this.answers.size >= this.limit) this.answers.clear();
      this.answers.set(text, answer);
    }
    this.lastText = text;
    this.lastAnswer = answer;
    return answer;
  }

  /** Forgets every answer (what they were worked out from has changed). */
  clear(): void {
    this.answers.clear();
    this.lastText = undefined;
    this.lastAnswer = undefined;
  }
}

/** A type's fields made writable again, for the code that builds a read-only value. */
export type Writable<T> = { -readonly [K in keyof T]: T[K] };
