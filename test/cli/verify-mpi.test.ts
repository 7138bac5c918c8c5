// `mpiexec -n 2 gramhd verify --case train_gram`: the golden GRAM training step with its batch of 2
// split one element per rank (gradients averaged over the ranks before clipping and Adam) matches
// the single-process golden losses, clipped gradients and updated weights within the golden
// tolerances. The two ranks run on two different software adapters, lavapipe and Chromium's
// SwiftShader, picked per node-local rank from GRAMHD_ADAPTER's list (lavapipe on both when
// Chromium's SwiftShader ICD is not installed). Skips only when mpiexec is absent.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { repoRoot } from '../helpers/golden.ts';

const hasMpiexec = spawnSync('mpiexec', ['--version'], { encoding: 'utf8' }).status === 0;
const lavapipe = '/usr/share/vulkan/icd.d/lvp_icd.json';
const swiftshader = '/usr/lib/chromium/vk_swiftshader_icd.json';
const twoAdapters = existsSync(lavapipe) && existsSync(swiftshader);

if (!hasMpiexec) {
  test('verify under mpiexec (skipped: no mpiexec; `sudo bash scripts/setup.sh` installs MPICH)', () => {});
} else {
  test(`mpiexec -n 2 verify --case train_gram: the split batch matches the golden step${twoAdapters ? ' (lavapipe + SwiftShader)' : ''}`, () => {
    const env: Record<string, string | undefined> = { ...process.env, XDG_RUNTIME_DIR: '/tmp' };
    if (twoAdapters) {
      env.VK_ICD_FILENAMES = `${lavapipe}:${swiftshader}`;
      env.GRAMHD_ADAPTER = 'llvmpipe,SwiftShader';
    }
    const r = spawnSync('mpiexec', ['-n', '2', process.execPath, 'bin/gramhd.js', 'verify', '--golden', 'test/golden', '--case', 'train_gram'],
      { cwd: repoRoot, encoding: 'utf8', env, timeout: 110_000 });
    assert.is(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stderr, /rank 0\/2: adapter .*train_gram with the batch split over 2 ranks/);
    assert.match(r.stderr, /rank 1\/2: adapter .*train_gram with the batch split over 2 ranks/);
    if (twoAdapters) {
      assert.match(r.stderr, /rank 0\/2: adapter [^\n]*llvmpipe/i);
      assert.match(r.stderr, /rank 1\/2: adapter [^\n]*swiftshader/i);
    }
    // rank 0 alone prints the table: one header, every output once
    assert.is(r.stdout.split('\n').filter((l) => l.startsWith('case ')).length, 1);
    assert.match(r.stdout, /all (\d+) outputs of train_gram within their allowed error/);
    assert.ok(!/FAIL/.test(r.stdout));
  });

  test('mpiexec verify refuses a non-training case with one line', () => {
    const r = spawnSync('mpiexec', ['-n', '2', process.execPath, 'bin/gramhd.js', 'verify', '--golden', 'test/golden', '--case', 'ops'],
      { cwd: repoRoot, encoding: 'utf8', env: { ...process.env, XDG_RUNTIME_DIR: '/tmp' }, timeout: 60_000 });
    assert.is.not(r.status, 0);
    assert.match(r.stderr, /gramhd: under mpiexec only the training cases \(train_gram, train_gramhd\) run, split over the ranks; not ops/);
  });
}

test.run();
