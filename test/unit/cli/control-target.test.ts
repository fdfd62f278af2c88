import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ControlApiError, UsageError } from '../../../src/cli/cli-errors.js';
import { baseUrl, connectAddress, DEFAULT_URL, resolveTarget } from '../../../src/cli/control-target.js';
import { ConfigError } from '../../../src/util/errors.js';

function file(text: string): string {
  const path = join(mkdtempSync(join(tmpdir(), 'sip-cli-target-')), 'config.yaml');
  writeFileSync(path, text);
  return path;
}

const TOKEN = 'file-token-0123456789';

describe('which control API the commands talk to', () => {
  it('defaults to http://127.0.0.1:8080 with no token', async () => {
    expect(await resolveTarget({}, {})).toEqual({ url: DEFAULT_URL, urlSource: 'the default' });
  });

  it('takes the environment over the default, and the flags over the environment', async () => {
    const env = { SIP_SERVER_URL: 'http://10.0.0.1:9000/', SIP_SERVER_TOKEN: 'env-token' };
    expect(await resolveTarget({}, env)).toEqual({ url: 'http://10.0.0.1:9000', urlSource: 'SIP_SERVER_URL', token: 'env-token', tokenSource: 'SIP_SERVER_TOKEN' });
    expect(await resolveTarget({ url: 'http://127.0.0.1:1234', token: 'flag-token' }, env)).toMatchObject({ url: 'http://127.0.0.1:1234', token: 'flag-token', tokenSource: '--token' });
    // Each separately: --url alone keeps the environment's token.
    expect(await resolveTarget({ url: '127.0.0.1:1234' }, env)).toMatchObject({ url: 'http://127.0.0.1:1234', token: 'env-token' });
    // Empty values count as absent.
    expect(await resolveTarget({ token: '' }, { SIP_SERVER_URL: '', SIP_SERVER_TOKEN: '' })).toEqual({ url: DEFAULT_URL, urlSource: 'the default' });
  });

  it('reads http-address, http-port and http-token from --config, over the environment; a wildcard address is loopback', async () => {
    const f = file(`TServer:\n  http-address: 0.0.0.0\n  http-port: 8181\n  http-token: ${TOKEN}\n`);
    expect(await resolveTarget({ config: f }, { SIP_SERVER_URL: 'http://10.0.0.1:1', SIP_SERVER_TOKEN: 'env' })).toEqual({
      url: 'http://127.0.0.1:8181',
      urlSource: f,
      token: TOKEN,
      tokenSource: `${f} (http-token)`,
    });
    const v6 = file(`TServer:\n  http-address: "::"\n  http-port: 8182\n  http-token: ${TOKEN}\n`);
    expect((await resolveTarget({ config: v6 }, {})).url).toBe('http://[::1]:8182');
    // A file without http-token: no token, whatever the environment says.
    const open = file('TServer:\n  http-port: 8183\n');
    expect(await resolveTarget({ config: open }, { SIP_SERVER_TOKEN: 'env' })).toEqual({ url: 'http://127.0.0.1:8183', urlSource: open });
    // The flags still win.
    expect(await resolveTarget({ config: f, url: 'http://127.0.0.2:1', token: 't' }, {})).toMatchObject({ url: 'http://127.0.0.2:1', token: 't' });
  });

  it('refuses a file that turns the API off, or that does not validate', async () => {
    await expect(resolveTarget({ config: file('TServer:\n  http-port: 0\n') }, {})).rejects.toThrow(ControlApiError);
    await expect(resolveTarget({ config: file('TServer:\n  http-port: nope\n') }, {})).rejects.toThrow(ConfigError);
  });

  it('connectAddress: wildcards become loopback, anything else stays', () => {
    expect(connectAddress('0.0.0.0')).toBe('127.0.0.1');
    expect(connectAddress('::')).toBe('::1');
    expect(connectAddress('0:0:0:0:0:0:0:0')).toBe('::1');
    expect(connectAddress('192.0.2.1')).toBe('192.0.2.1');
    expect(connectAddress('::1')).toBe('::1');
  });

  it('baseUrl: http and https only, no credentials, no trailing slash; a path prefix is kept', () => {
    expect(baseUrl('http://h:1/', 'x')).toBe('http://h:1');
    expect(baseUrl('https://proxy.example/sip/', 'x')).toBe('https://proxy.example/sip');
    expect(baseUrl('[::1]:8080', 'x')).toBe('http://[::1]:8080');
    expect(() => baseUrl('ftp://h', '--url')).toThrow(UsageError);
    expect(() => baseUrl('http://u:p@h', '--url')).toThrow(/no credentials/);
    expect(() => baseUrl('http://', '--url')).toThrow(/not a URL/);
  });
});
