// The offline bundle (scripts/bundle-offline.sh) runs with what it carries: its own Node and
// dawn.node, unpacked on first use, and the CLI and tests bundled without tsx.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../helpers/golden.ts';

test('the offline bundle verifies gram_small and runs a bundled test file with its own Node', () => {
  const cache = mkdtempSync(join(tmpdir(), 'gramhd-offline-'));
  const env = { ...process.env, GRAMHD_OFFLINE_CACHE: cache };
  try {
    const build = spawnSync('bash', ['scripts/bundle-offline.sh'], { cwd: repoRoot, encoding: 'utf8', env });
    assert.is(build.status, 0, build.stderr + build.stdout);
    for (const file of ['gramhd.mjs', 'node.xz', 'dawn.node.xz', 'gramhd', 'test.sh', 't/io-safetensors.test.mjs']) {
      assert.ok(existsSync(join(repoRoot, '.gpu', file)), `.gpu/${file} missing`);
    }
    const verify = spawnSync('bash', ['.gpu/gramhd', 'verify', '--golden', 'test/golden', '--case', 'gram_small'], { cwd: repoRoot, encoding: 'utf8', env });
    assert.is(verify.status, 0, verify.stderr + verify.stdout);
    assert.match(verify.stdout, /all 11 outputs of gram_small within their allowed error/);
    // the Node that ran it is the bundle's, unpacked into the cache
    assert.ok(existsSync(join(cache, 'node')), 'the bundle did not unpack its Node');
    // a bundled test finds the golden files from its own location, as the source test does
    const io = spawnSync(join(cache, 'node'), ['.gpu/t/io-safetensors.test.mjs'], { cwd: repoRoot, encoding: 'utf8', env });
    assert.is(io.status, 0, io.stderr + io.stdout);
    assert.match(io.stdout, /Passed:\s+7/);
  } finally {
    rmSync(cache, { recursive: true, force: true });
  }
});

test.run();
