import { describe, expect, it } from 'vitest';
import { createResponse } from '../../../src/sip/response.js';
import { request } from '../../support/sip-builders.js';

describe('createResponse', () => {
  it('never echoes a long or unprintable phrase: a 60 KB Request-URI user in "No Route to …" is cut to 120 printable characters', () => {
    const req = request({ method: 'INVITE', transport: 'UDP' });
    const res = createResponse(req, 404, `No Route to ${'9'.repeat(60_000)}\r\nX-Injected: yes`);
    expect(res.reason.length).toBeLessThanOrEqual(120);
    expect(res.reason).toMatch(/^No Route to 9+\.\.\.$/);
    expect(createResponse(req, 404, 'Not\r\nFound').reason).toBe('Not Found');
    expect(createResponse(req, 480, '\r\n').reason).toBe('Temporarily Unavailable');
    expect(createResponse(req, 486).reason).toBe('Busy Here');
  });
});
