// ../shared/docs/architecture.md: imports only go downward. kernels/ imports nothing of ours,
// engine/ kernels/, model/ engine/ and kernels/, train/ model/ and engine/ (and kernels/ through
// them), web/ model/ and engine/ but never train/ or cli/, cli/ anything below it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { repoRoot } from '../helpers/golden.ts';

const allowed: Record<string, string[]> = {
  kernels: ['kernels'],
  engine: ['engine', 'kernels'],
  model: ['model', 'engine', 'kernels'],
  train: ['train', 'model', 'engine', 'kernels'],
  web: ['web', 'model', 'engine', 'kernels'],
  cli: ['cli', 'train', 'web', 'model', 'engine', 'kernels'],
};

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return name === 'dist' || name === 'node_modules' ? [] : sources(path);
    return /\.(ts|mjs)$/.test(name) ? [path] : [];
  });
}

/** Every relative module specifier of a source: static imports and exports, and import(). */
function specifiers(text: string): string[] {
  return [...text.matchAll(/(?:from\s+|import\s*\(\s*|import\s+)(['"])(\.{1,2}\/[^'"]+)\1/g)].map((m) => m[2]);
}

test('every import of kernels/, engine/, model/, train/, web/ and cli/ goes to its own layer or one below', () => {
  const violations: string[] = [];
  let checked = 0;
  for (const layer of Object.keys(allowed)) {
    for (const file of sources(join(repoRoot, layer))) {
      for (const spec of specifiers(readFileSync(file, 'utf8'))) {
        const target = relative(repoRoot, normalize(join(dirname(file), spec)));
        const targetLayer = target.split(/[\\/]/)[0];
        checked++;
        if (!allowed[layer].includes(targetLayer)) violations.push(`${relative(repoRoot, file)} imports ${target}`);
      }
    }
  }
  assert.ok(checked > 200, `only ${checked} imports found: the scan is broken`);
  assert.equal(violations, []);
});

test.run();
