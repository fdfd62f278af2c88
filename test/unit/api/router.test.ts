import { describe, expect, it } from 'vitest';
import { decodePath, Router, type Reply } from '../../../src/api/router.js';

const ok = (): Reply => ({ status: 200, json: {} });

describe('Router', () => {
  const router = new Router().add('GET', '/dns', ok).add('GET', '/dns/{dn}', ok).add('POST', '/calls/{id}/hold', ok).add('DELETE', '/calls/{id}', ok);

  it('matches a path parameter as one decoded segment', () => {
    const m = router.match('GET', decodePath('/dns/gw%2F1') ?? []);
    expect(m).toMatchObject({ kind: 'found', params: { dn: 'gw/1' } });
  });

  it('answers method-not-allowed with the methods the path does take', () => {
    expect(router.match('PUT', ['dns'])).toEqual({ kind: 'method-not-allowed', allow: ['GET'] });
    expect(router.match('GET', ['calls', 'c1', 'hold'])).toEqual({ kind: 'method-not-allowed', allow: ['POST'] });
  });

  it('does not match an empty parameter or extra segments', () => {
    expect(router.match('GET', decodePath('/dns/') ?? []).kind).toBe('not-found');
    expect(router.match('GET', ['dns', '1001', 'x']).kind).toBe('not-found');
    expect(router.match('GET', []).kind).toBe('not-found');
  });

  it('reports bad percent-encoding instead of throwing', () => {
    expect(decodePath('/dns/%E0%A4%A')).toBeUndefined();
    expect(decodePath('/dns/%zz')).toBeUndefined();
    expect(decodePath('/')).toEqual([]);
  });
});
