import { describe, expect, it } from 'vitest';
import { defaultConfig, parseConfigText, suggest } from '../../../src/config/load.js';
import { ConfigError } from '../../../src/util/errors.js';

function problems(text: string): string[] {
  try {
    parseConfigText(text, 'bad.yaml');
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).problems;
  }
  throw new Error('expected the config to be refused');
}

describe('config loading', () => {
  it('built-in defaults listen on 127.0.0.1:5060 with extensions 1000-1019 that must register', () => {
    const c = defaultConfig();
    expect(c.TServer['sip-address']).toBe('127.0.0.1');
    expect(c.TServer['sip-port']).toBe(5060);
    expect(c.TServer['sip-enable-tcp-keep-alive']).toBe(false);
    expect(c.TServer['http-port']).toBe(8080);
    expect(Object.keys(c.dns)).toHaveLength(20);
    expect(c.dns['1019']).toMatchObject({ type: 'extension', contact: '*' });
  });

  it('an empty file gives the option defaults', () => {
    const c = parseConfigText('', 'empty.yaml');
    expect(c.TServer['sip-tcp-connect-timeout']).toBe(5000);
    expect(c.TServer['sip-max-message-size']).toBe(65535);
    expect(c.dns).toEqual({});
  });

  it('reads the SPEC example', () => {
    const c = parseConfigText(
      [
        'TServer:',
        '  sip-address: 127.0.0.1',
        '  sip-port: 5070',
        '  sip-enable-tcp-keep-alive: true',
        'log:',
        '  level: debug',
        'dns:',
        '  "1001": { type: extension, contact: "*", oos-check: 30, oos-force: 5 }',
        '  "gw1":  { type: trunk, contact: "sip:192.0.2.10:5060;transport=tcp", prefix: "9", priority: 1 }',
        '  "ms1":  { type: voip-service, service-type: msml, contact: "sip:192.0.2.20:5060;transport=tcp" }',
      ].join('\n'),
      'spec.yaml',
    );
    expect(c.TServer['sip-port']).toBe(5070);
    expect(c.TServer['sip-enable-tcp-keep-alive']).toBe(true);
    expect(c.log.level).toBe('debug');
    expect(c.dns.gw1).toMatchObject({ type: 'trunk', prefix: '9', priority: 1 });
    expect(c.dns['1001']).toMatchObject({ 'oos-check': 30, 'oos-force': 5 });
  });

  it('lists every problem with file, path, value and what was expected', () => {
    const p = problems(
      [
        'TServer:',
        '  sip-prot: 5060',
        '  sip-port: 70000',
        '  sip-address: nowhere',
        '  sip-enable-tcp-keep-alive: "yes"',
        'dns:',
        '  "1001": { type: phone, contact: "*", oos-check: 400 }',
        '  "1002": { type: extension, contact: "sip:1.2.3.4", pasword: x }',
      ].join('\n'),
    );
    expect(p).toContain('bad.yaml: TServer.sip-prot: unknown option (did you mean "sip-port"?)');
    expect(p.find((l) => l.startsWith('bad.yaml: TServer.sip-port: value "70000" is invalid: expected'))).toBeDefined();
    expect(p.find((l) => l.startsWith('bad.yaml: TServer.sip-address: value "nowhere" is invalid: expected'))).toBeDefined();
    expect(p.find((l) => l.startsWith('bad.yaml: TServer.sip-enable-tcp-keep-alive: value "yes" is invalid: expected'))).toBeDefined();
    expect(p.find((l) => l.startsWith('bad.yaml: dns.1001.type: value "phone" is invalid: expected'))).toBeDefined();
    expect(p.find((l) => l.startsWith('bad.yaml: dns.1001.oos-check: value "400" is invalid: expected'))).toBeDefined();
    expect(p).toContain('bad.yaml: dns.1002.pasword: unknown option (did you mean "password"?)');
    expect(p).toHaveLength(7);
  });

  it('refuses YAML syntax errors and duplicate keys', () => {
    expect(problems('TServer: [unclosed')[0]).toMatch(/^bad\.yaml: YAML syntax: /);
    expect(problems('TServer:\n  sip-port: 1\n  sip-port: 2\n')[0]).toMatch(/^bad\.yaml: YAML syntax: .*[Uu]nique/);
  });

  it('requires cert and key when the TLS port is on, and a token off loopback', () => {
    const p = problems('TServer:\n  sip-port-tls: 5061\n  http-address: 0.0.0.0\n');
    expect(p.some((l) => l.includes('TServer.sip-tls-cert') && l.includes('required'))).toBe(true);
    expect(p.some((l) => l.includes('TServer.http-token') && l.includes('loopback'))).toBe(true);
  });

  it('refuses a control API token anybody could guess (under 16 characters)', () => {
    const p = problems('TServer:\n  http-token: "x"\n');
    expect(p.some((l) => l.includes('TServer.http-token') && l.includes('at least 16 characters'))).toBe(true);
  });


  it('suggests only close names', () => {
    expect(suggest('sip-prot', ['sip-port', 'store'])).toBe('sip-port');
    expect(suggest('completely-different', ['sip-port'])).toBeUndefined();
  });
});
