#!/usr/bin/env node
// Keeps the layers' imports pointing down (STYLE.md §1): a module may import from its own
// folder and from lower layers only. Exits 1 listing every offending import.
// Usage: node scripts/check-layers.mjs [SRC_DIR]   (default: this repository's src/)
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const root = resolve(process.argv[2] ?? resolve(dirname(new URL(import.meta.url).pathname), '..', 'src'));
const LAYERS = {
  util: 0,
  sip: 1,
  config: 1,
  transport: 2,
  transaction: 3,
  capture: 3, // HEP export: subscribes to the transport's wire tap; nothing below imports it
  dialog: 4,
  directory: 5,
  registrar: 6,
  calls: 7,
  metrics: 8,
  api: 8,
  cli: 9, // the control commands of the command line (a client of the api's JSON)
  '': 10, // server.ts, server-command.ts and cli.ts: the composition root
};

function layerOf(file) {
  const rel = relative(root, file);
  const top = rel.includes('/') ? rel.split('/')[0] : '';
  if (!(top in LAYERS)) throw new Error(`src/${rel}: folder "${top}" has no layer in scripts/check-layers.mjs`);
  return { name: top, rank: LAYERS[top] };
}

function walk(dir) {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? walk(p) : p.endsWith('.ts') ? [p] : [];
  });
}

const problems = [];
for (const file of walk(root)) {
  const from = layerOf(file);
  const text = readFileSync(file, 'utf8');
  for (const m of text.matchAll(/(?:import|export)[^'"]*?from\s+['"](\.[^'"]+)['"]/g)) {
    const target = resolve(dirname(file), m[1]);
    if (!target.startsWith(root)) continue;
    const to = layerOf(target);
    if (to.name === from.name) continue;
    if (to.rank >= from.rank) {
      problems.push(`src/${relative(root, file)} imports ${m[1]}: layer "${from.name || 'root'}" must not depend on "${to.name || 'root'}"`);
    }
  }
}
if (problems.length > 0) {
  console.error(problems.join('\n'));
  process.exit(1);
}
console.log('layers: every import points down');
