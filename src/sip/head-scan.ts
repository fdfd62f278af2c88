/**
 * Byte-level helpers for framing a stream: where a header section ends, and what its
 * Content-Length says. They read only as much as framing needs; parseMessage does the rest.
 */

/**
 * Searches data from `from` for the blank line that ends a header section: an LF followed
 * by LF or CRLF. Returns the offset just past it, or -1 with the offset to resume from once
 * more bytes have arrived (the search never goes over the same bytes twice).
 */
export function findHeadEnd(data: Buffer, from: number): { headEnd: number; resumeAt: number } {
  const end = data.length;
  let i = from;
  for (;;) {
    const lf = data.indexOf(0x0a, i);
    if (lf < 0) return { headEnd: -1, resumeAt: end };
    if (lf + 1 >= end) return { headEnd: -1, resumeAt: lf };
    const next = data[lf + 1];
    if (next === 0x0a) return { headEnd: lf + 2, resumeAt: lf + 2 };
    if (next === 0x0d) {
      if (lf + 2 >= end) return { headEnd: -1, resumeAt: lf };
      if (data[lf + 2] === 0x0a) return { headEnd: lf + 3, resumeAt: lf + 3 };
    }
    i = lf + 1;
  }
}

/**
 * The Content-Length of a complete header section (start line included), or the reason it
 * cannot frame a stream: "Missing Content-Length", "Bad Content-Length", or "Multiple
 * Content-Length headers" when two disagree. Compact form `l` and folded values count.
 */
export function contentLengthOfHead(head: Buffer): number | string {
  const lines = head.toString('latin1').split('\n');
  const values: string[] = [];
  let inLength = false;
  for (let k = 1; k < lines.length; k++) {
    const line = (lines[k] ?? '').replace(/\r$/, '');
    if (line.startsWith(' ') || line.startsWith('\t')) {
      if (inLength) values[values.length - 1] += ` ${line.trim()}`;
      continue;
    }
    inLength = false;
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    if (name === 'content-length' || name === 'l') {
      values.push(line.slice(colon + 1));
      inLength = true;
    }
  }
  if (values.length === 0) return 'Missing Content-Length';
  let length: number | undefined;
  for (const raw of values) {
    const v = raw.trim();
    if (!/^\d{1,10}$/.test(v)) return 'Bad Content-Length';
    if (length !== undefined && Number(v) !== length) return 'Multiple Content-Length headers';
    length = Number(v);
  }
  return length ?? 'Missing Content-Length';
}
