import { isIPv6 } from 'node:net';
import { ControlApiError, UsageError } from './cli-errors.js';

/** Where the control API is when nothing says otherwise: the server's built-in `http-address:http-port`. */
export const DEFAULT_URL = 'http://127.0.0.1:8080';

/** The control API to talk to, and how it was chosen (for messages). */
export interface ControlTarget {
  /** Base URL, no trailing slash: paths such as /dns are appended. */
  url: string;
  urlSource: string;
  token?: string;
  /** Where the token came from ("--token", "SIP_SERVER_TOKEN", "FILE (http-token)"); absent with no token. */
  tokenSource?: string;
}

export interface TargetFlags {
  url?: string | undefined;
  token?: string | undefined;
  config?: string | undefined;
}

/**
 * Each of URL and token from the first source that has it: the flag (`--url`, `--token`);
 * else the configuration file given with `--config` (its TServer `http-address`, `http-port`,
 * `http-token`; a file without `http-token` means no token); else the environment
 * (`SIP_SERVER_URL`, `SIP_SERVER_TOKEN`); else the built-in default (no token). Empty values
 * count as absent. A file that does not validate throws ConfigError, as for the server.
 */
export async function resolveTarget(flags: TargetFlags, env: NodeJS.ProcessEnv): Promise<ControlTarget> {
  const fromFile = flags.config ? await fileTarget(flags.config) : undefined;
  const envUrl = nonEmpty(env.SIP_SERVER_URL);
  const envToken = nonEmpty(env.SIP_SERVER_TOKEN);
  const flagUrl = nonEmpty(flags.url);
  const flagToken = nonEmpty(flags.token);

  let url: string;
  let urlSource: string;
  if (flagUrl !== undefined) [url, urlSource] = [baseUrl(flagUrl, '--url'), '--url'];
  else if (fromFile) [url, urlSource] = [fromFile.url, fromFile.source];
  else if (envUrl !== undefined) [url, urlSource] = [baseUrl(envUrl, 'SIP_SERVER_URL'), 'SIP_SERVER_URL'];
  else [url, urlSource] = [DEFAULT_URL, 'the default'];

  const target: ControlTarget = { url, urlSource };
  if (flagToken !== undefined) return { ...target, token: flagToken, tokenSource: '--token' };
  if (fromFile) return fromFile.token === undefined ? target : { ...target, token: fromFile.token, tokenSource: `${fromFile.source} (http-token)` };
  if (envToken !== undefined) return { ...target, token: envToken, tokenSource: 'SIP_SERVER_TOKEN' };
  return target;
}

/** The control API of a configuration file: its address (loopback for a wildcard), port and token. */
async function fileTarget(file: string): Promise<{ url: string; token: string | undefined; source: string }> {
  // Loaded only for --config: the schema's modules are most of a command's start-up time.
  const { loadConfigFile } = await import('../config/load.js');
  const t = loadConfigFile(file).TServer;
  if (t['http-port'] === 0) throw new ControlApiError('API_OFF', `${file}: http-port is 0: the control API is off`);
  const host = connectAddress(t['http-address']);
  return { url: `http://${isIPv6(host) ? `[${host}]` : host}:${t['http-port']}`, token: t['http-token'], source: file };
}

/** The address to connect to for a listen address: a wildcard (0.0.0.0, ::) means this machine's loopback. */
export function connectAddress(listen: string): string {
  if (listen === '0.0.0.0') return '127.0.0.1';
  if (isIPv6(listen) && new URL(`http://[${listen}]/`).hostname === '[::]') return '::1';
  return listen;
}

/** An http(s) base URL from what the operator typed; "host:port" alone means http://host:port. */
export function baseUrl(text: string, from: string): string {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `http://${text}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new UsageError(`${from}: "${text}" is not a URL (expected e.g. ${DEFAULT_URL})`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`${from}: "${text}" is not an http:// or https:// URL`);
  if (url.username !== '' || url.password !== '') throw new UsageError(`${from}: put no credentials in the URL: give the token with --token or SIP_SERVER_TOKEN`);
  return `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
}

function nonEmpty(s: string | undefined): string | undefined {
  return s === undefined || s === '' ? undefined : s;
}
