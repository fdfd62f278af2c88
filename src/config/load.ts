import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { ConfigError } from '../util/errors.js';
import { configSchema, dnSchema, isLoopback, logSchema, tserverSchema, type Config } from './schema.js';

/** The built-in configuration (SPEC §2): extensions 1000–1019 that register to be reached. */
export function defaultConfig(): Config {
  const dns: Record<string, unknown> = {};
  for (let n = 1000; n <= 1019; n++) dns[String(n)] = { type: 'extension', contact: '*' };
  return configSchema.parse({ dns });
}

/** Reads and validates a YAML file; throws ConfigError with one `FILE: path: …` line per fault. */
export function loadConfigFile(file: string): Config {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError([`${file}: cannot read file: ${(err as NodeJS.ErrnoException).code ?? String(err)}`]);
  }
  return parseConfigText(text, file);
}

export function parseConfigText(text: string, file: string): Config {
  const doc = parseDocument(text, { uniqueKeys: true, prettyErrors: false });
  if (doc.errors.length > 0) {
    throw new ConfigError(doc.errors.map((e) => `${file}: YAML syntax: ${e.message.split('\n')[0] ?? ''}`));
  }
  const raw: unknown = doc.toJS() ?? {};
  const result = configSchema.safeParse(raw);
  if (result.success) return result.data;
  throw new ConfigError(result.error.issues.flatMap((issue) => describeIssue(file, raw, issue)));
}

function describeIssue(file: string, raw: unknown, issue: z.core.$ZodIssue): string[] {
  const path = issue.path.map(String);
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((key) => {
      const where = [...path, key].join('.');
      const hint = suggest(key, knownKeys(path));
      return `${file}: ${where}: unknown option${hint ? ` (did you mean "${hint}"?)` : ''}`;
    });
  }
  const where = path.length > 0 ? path.join('.') : '(top level)';
  const value = valueAt(raw, issue.path);
  const expected = issue.message.replace(/^(Invalid input|Too big|Too small|Invalid string|Invalid option): /, '');
  if (value === undefined) return [`${file}: ${where}: ${expected}`];
  return [`${file}: ${where}: value ${JSON.stringify(String(valueText(value)))} is invalid: ${expected}`];
}

function valueText(v: unknown): string {
  return typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v);
}

function valueAt(raw: unknown, path: PropertyKey[]): unknown {
  let cur = raw;
  for (const k of path) {
    if (typeof cur !== 'object' || cur === null) return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[k];
  }
  return cur;
}

function knownKeys(path: string[]): string[] {
  if (path.length === 0) return Object.keys(configSchema.shape);
  if (path[0] === 'TServer') return Object.keys(tserverSchema.shape);
  if (path[0] === 'log') return Object.keys(logSchema.shape);
  if (path[0] === 'dns') return Object.keys(dnSchema.shape);
  return [];
}

/** The known key closest to a misspelt one, if it is close enough to be a likely typo. */
export function suggest(key: string, known: string[]): string | undefined {
  let best: string | undefined;
  let bestDist = Infinity;
  for (const k of known) {
    const d = editDistance(key.toLowerCase(), k.toLowerCase());
    if (d < bestDist) {
      best = k;
      bestDist = d;
    }
  }
  return best !== undefined && bestDist <= Math.max(2, Math.floor(key.length / 3)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      cur.push(Math.min((prev[j] ?? 0) + 1, (cur[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + cost));
    }
    prev = cur;
  }
  return prev[b.length] ?? 0;
}

/**
 * Things a valid configuration probably does not mean (check-config prints them, the server
 * logs them): on an address other hosts can reach, a DN that registers (`contact: "*"`)
 * without a password can register only from a trusted peer — with loopback the only trusted
 * peer, from nowhere but this machine.
 */
export function configWarnings(config: Config, file: string): string[] {
  return [...namedPeers(config, file), ...unreachableDns(config, file)];
}

/** Trunk and voip-service contacts named by host: names are not resolved, so their requests are not trusted. */
function namedPeers(config: Config, file: string): string[] {
  return Object.entries(config.dns)
    .filter(([, dn]) => dn.type !== 'extension' && dn.contact !== '*' && isIP(/^sips?:(?:[^@]*@)?(\[[^\]]+\]|[^:;>]+)/.exec(dn.contact)?.[1]?.replace(/^\[|\]$/g, '') ?? '') === 0)
    .map(([n, dn]) => `${file}: warning: dns ${n}: contact "${dn.contact}" names a host, not an address: its requests are trusted only from sip-trusted-peers (host names are not resolved); give the address, or add it to sip-trusted-peers`);
}

function unreachableDns(config: Config, file: string): string[] {
  const t = config.TServer;
  if (isLoopback(t['sip-address'])) return [];
  const trustsOthers = t['sip-trusted-peers'].some((cidr) => !isLoopback(cidr.split('/')[0] ?? ''));
  if (trustsOthers) return [];
  const open = Object.entries(config.dns)
    .filter(([, dn]) => dn.contact === '*' && dn.password === undefined)
    .map(([n]) => n);
  if (open.length === 0) return [];
  const list = open.length > 5 ? `${open.slice(0, 5).join(', ')} and ${open.length - 5} more` : open.join(', ');
  return [
    `${file}: warning: dns ${list}: no password, and sip-trusted-peers trusts only loopback: phones on other hosts cannot register these DNs (give them a password, or add the phones' network to sip-trusted-peers)`,
  ];
}
