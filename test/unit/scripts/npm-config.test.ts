import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const REPO = resolve(import.meta.dirname, '../../..');

/** This environment without the npm_config_* that an npm running the tests passes down: only the project's own config counts. */
const ENV = Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.toLowerCase().startsWith('npm_config_')));

describe("the project's npm configuration", () => {
  it('npm commands in the repository print no warning about it (no unknown project config such as build-from-source)', () => {
    const r = spawnSync('npm', ['pkg', 'get', 'name'], { cwd: REPO, env: ENV, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe('"sip-server"');
    expect(r.stderr).not.toMatch(/npm warn/i);
  });
});
