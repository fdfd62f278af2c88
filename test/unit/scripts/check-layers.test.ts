import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const SCRIPT = resolve(import.meta.dirname, '../../../scripts/check-layers.mjs');

function tree(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), 'layers-'));
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(join(root, path, '..'), { recursive: true });
    writeFileSync(join(root, path), text);
  }
  return root;
}

describe('layer check', () => {
  it('passes on this repository', () => {
    expect(execFileSync('node', [SCRIPT]).toString()).toContain('every import points down');
  });

  it('fails when a lower layer imports a higher one', () => {
    const root = tree({
      'sip/parser.ts': "import { TransportLayer } from '../transport/transport-layer.js';\n",
      'transport/transport-layer.ts': "import { parseMessage } from '../sip/parser.js';\nexport class TransportLayer {}\n",
    });
    const r = spawnSync('node', [SCRIPT, root]);
    expect(r.status).toBe(1);
    expect(r.stderr.toString()).toContain('src/sip/parser.ts imports ../transport/transport-layer.js: layer "sip" must not depend on "transport"');
  });

  it('fails on a folder that has no layer', () => {
    const r = spawnSync('node', [SCRIPT, tree({ 'misc/a.ts': 'export const a = 1;\n' })]);
    expect(r.status).not.toBe(0);
    expect(r.stderr.toString()).toContain('folder "misc" has no layer');
  });
});
