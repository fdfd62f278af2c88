import { describe, expect, it } from 'vitest';
import { defaultConfig, parseConfigText } from '../../../src/config/load.js';
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

describe('HEP export options (hep-*)', () => {
  it('are off by default: no address, port 9060, capture id 2001, no password', () => {
    const t = defaultConfig().TServer;
    expect(t['hep-address']).toBeUndefined();
    expect(t['hep-port']).toBe(9060);
    expect(t['hep-capture-id']).toBe(2001);
    expect(t['hep-password']).toBeUndefined();
  });

  it('reads an IPv4 or IPv6 collector, its port, capture id and password', () => {
    const t = parseConfigText('TServer:\n  hep-address: 192.0.2.50\n  hep-port: 9061\n  hep-capture-id: 4294967295\n  hep-password: myHep\n', 'ok.yaml').TServer;
    expect(t).toMatchObject({ 'hep-address': '192.0.2.50', 'hep-port': 9061, 'hep-capture-id': 4_294_967_295, 'hep-password': 'myHep' });
    expect(parseConfigText('TServer:\n  hep-address: "2001:db8::50"\n', 'ok.yaml').TServer['hep-address']).toBe('2001:db8::50');
    expect(parseConfigText('TServer:\n  hep-capture-id: 0\n', 'ok.yaml').TServer['hep-capture-id']).toBe(0);
  });

  it('refuses a host name, a port out of 1-65535, a capture id out of uint32, an empty password', () => {
    const p = problems(
      ['TServer:', '  hep-address: homer.example.com', '  hep-port: 0', '  hep-capture-id: 4294967296', '  hep-password: ""'].join('\n'),
    );
    expect(p.find((l) => l.startsWith('bad.yaml: TServer.hep-address: value "homer.example.com" is invalid: expected an IPv4 or IPv6 address'))).toBeDefined();
    expect(p.find((l) => l.startsWith('bad.yaml: TServer.hep-port: value "0" is invalid: expected'))).toBeDefined();
    expect(p.find((l) => l.startsWith('bad.yaml: TServer.hep-capture-id: value "4294967296" is invalid: expected'))).toBeDefined();
    expect(p.find((l) => l.startsWith('bad.yaml: TServer.hep-password: value "" is invalid: expected'))).toBeDefined();
    expect(p).toHaveLength(4);
    expect(problems('TServer:\n  hep-port: 65536\n')[0]).toMatch(/^bad\.yaml: TServer\.hep-port: value "65536" is invalid/);
    expect(problems('TServer:\n  hep-capture-id: -1\n')[0]).toMatch(/^bad\.yaml: TServer\.hep-capture-id: value "-1" is invalid/);
    expect(problems('TServer:\n  hep-capture-id: 1.5\n')[0]).toMatch(/^bad\.yaml: TServer\.hep-capture-id: value "1.5" is invalid/);
    expect(problems(`TServer:\n  hep-password: "${'x'.repeat(256)}"\n`)[0]).toMatch(/^bad\.yaml: TServer\.hep-password: value "x+" is invalid/);
  });

  it('a misspelt hep option is unknown, with a hint', () => {
    expect(problems('TServer:\n  hep-adress: 127.0.0.1\n')).toEqual(['bad.yaml: TServer.hep-adress: unknown option (did you mean "hep-address"?)']);
    expect(problems('TServer:\n  hep-capture-di: 5\n')).toEqual(['bad.yaml: TServer.hep-capture-di: unknown option (did you mean "hep-capture-id"?)']);
  });
});
