import { createHash } from 'node:crypto';

export interface DigestAnswerOptions {
  algorithm: 'MD5' | 'SHA-256';
  user: string;
  password: string;
  uri: string;
  nc: string;
  /** The request's method (default REGISTER). */
  method?: string;
}

/**
 * The Authorization / Proxy-Authorization value answering `challenge` (a WWW-Authenticate or
 * Proxy-Authenticate value), computed here with node:crypto, independently of src/sip/digest.ts.
 */
export function digestAnswer(challenge: string, opts: DigestAnswerOptions): string {
  const param = (name: string): string => new RegExp(`${name}="?([^",]+)"?`).exec(challenge)?.[1] ?? '';
  const H = (s: string): string => createHash(opts.algorithm === 'MD5' ? 'md5' : 'sha256').update(s).digest('hex');
  const realm = param('realm');
  const nonce = param('nonce');
  const cnonce = 'abcdef0123';
  const response = H(`${H(`${opts.user}:${realm}:${opts.password}`)}:${nonce}:${opts.nc}:${cnonce}:auth:${H(`${opts.method ?? 'REGISTER'}:${opts.uri}`)}`);
  return `Digest username="${opts.user}", realm="${realm}", nonce="${nonce}", uri="${opts.uri}", response="${response}", algorithm=${opts.algorithm}, qop=auth, nc=${opts.nc}, cnonce="${cnonce}"`;
}
