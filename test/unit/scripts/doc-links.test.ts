import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const REPO = resolve(import.meta.dirname, '../../..');

/** README.md and every Markdown file under docs/. */
function docs(): string[] {
  return [join(REPO, 'README.md'), ...readdirSync(join(REPO, 'docs')).filter((f) => f.endsWith('.md')).map((f) => join(REPO, 'docs', f))];
}

/** The targets of the Markdown links in `text` that are not URLs or anchors in the same page. */
function localLinks(text: string): string[] {
  return [...text.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1] ?? '').filter((t) => !/^[a-z][a-z0-9+.-]*:/i.test(t) && !t.startsWith('#'));
}

describe('README and docs stand alone', () => {
  it('every relative link points to a file inside the repository that exists', () => {
    const broken: string[] = [];
    for (const file of docs()) {
      for (const link of localLinks(readFileSync(file, 'utf8'))) {
        const target = resolve(dirname(file), link.split('#')[0] ?? '');
        const inside = !relative(REPO, target).startsWith('..');
        if (!inside || !existsSync(target)) broken.push(`${relative(REPO, file)}: ${link}${inside ? ' (missing)' : ' (outside the repository)'}`);
      }
    }
    expect(broken).toEqual([]);
  });
});
