import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CONFIG_NAMES, configByName, isGramHD, parseConfig, type GramHDConfig } from '../../model/config.ts';
import { goldenDir } from '../helpers/golden.ts';

const manifest = JSON.parse(readFileSync(join(goldenDir, 'manifest.json'), 'utf8'));

test('the paper\'s seven named configurations carry its values', () => {
  assert.equal([...CONFIG_NAMES], ['GRAM64_FFHQ', 'GRAM64_AFHQ', 'GRAMHD256_FFHQ', 'GRAMHD256_AFHQ', 'GRAMHD512_FFHQ', 'GRAMHD512_AFHQ', 'GRAMHD1024_FFHQ', 'GRAM32_SYNTH', 'GRAMHD128_SYNTH']);
  const table: Record<string, [img: number, lr: number | null, batch: number, split: number, gLr: number, dLr: number, r1: number, cons: number, fgUp: number[] | null, bgUp: number[] | null]> = {
    GRAM64_FFHQ: [64, null, 8, 1, 2e-5, 2e-4, 1, 0, null, null],
    GRAM64_AFHQ: [64, null, 8, 1, 2e-5, 2e-4, 1, 0, null, null],
    GRAMHD256_FFHQ: [256, 64, 4, 4, 2e-4, 2e-4, 3, 1, [64, 64], [64, 32]],
    GRAMHD256_AFHQ: [256, 64, 4, 4, 2e-4, 2e-4, 3, 1, [64, 64], [64, 32]],
    GRAMHD512_FFHQ: [512, 64, 2, 2, 2e-4, 2e-4, 5, 3, [64, 64, 32], [64, 32, 16]],
    GRAMHD512_AFHQ: [512, 64, 2, 2, 2e-4, 2e-4, 5, 3, [64, 64, 32], [64, 32, 16]],
    GRAMHD1024_FFHQ: [1024, 64, 2, 2, 2e-4, 2e-4, 10, 10, [64, 64, 32, 16], [64, 32, 16, 8]],
  };
  assert.equal(Object.keys(table), CONFIG_NAMES.filter((n) => !n.endsWith('_SYNTH')));
  for (const [name, [img, lr, batch, split, gLr, dLr, r1, cons, fgUp, bgUp]] of Object.entries(table)) {
    const c = configByName(name);
    const t = c.training!;
    assert.equal([c.img_size, isGramHD(c) ? c.lr_img_size : null, t.batch_size, t.batch_split, t.gen_lr, t.disc_lr, t.r1_lambda, t.cons_lambda], [img, lr, batch, split, gLr, dLr, r1, cons], name);
    assert.equal([c.z_dim, t.betas, t.grad_clip, t.pos_lambda, t.real_pos_lambda, t.ema_decays, t.adam_eps], [256, [0, 0.9], 0.3, 15, 15, [0.999, 0.9999], 1e-8], name);
    assert.equal(c.camera, { fov: 12, ray_start: 0.88, ray_end: 1.12 });
    assert.equal(c.pose, { sample_dist: 'gaussian', h_mean: Math.PI / 2, v_mean: Math.PI / 2, h_stddev: 0.3, v_stddev: 0.155 });
    assert.equal(c.representation, { hidden_dim: 256, sigma_clamp_mode: 'softplus', rgb_clamp_mode: 'widen_sigmoid', hidden_dim_sample: 128, layer_num_sample: 3, center: [0, 0, -1.5], init_radius: 0 });
    assert.equal(c.renderer, { num_samples: 64, num_manifolds: 24, levels_start: 23, levels_end: 8 });
    assert.is(c.discriminator!.max_channels, 400);
    assert.is(c.training!.dataset, name.endsWith('FFHQ') ? 'FFHQ' : 'AFHQCats');
    if (isGramHD(c)) {
      assert.is(c.feature_dim, 32);
      assert.equal(c.super_resolution.fg, { w_dim: 256, nf: 64, nb: 8, gc: 32, up_channels: fgUp!, to_rgb_ks: 1 });
      assert.equal(c.super_resolution.bg, { nf: 64, nb: 4, gc: 32, up_channels: bgUp!, use_pixel_shuffle: false, global_residual: true });
      assert.equal([t.use_patch_d, t.patch_lambda, t.r1_patch], [true, 0.1, true]);
      assert.is(c.discriminator!.class, 'GramEncoderPatchDiscriminator');
      // ndf = min(64, 2^(14 - log2 img)), n = max(3, log2 img - 6)
      assert.equal([c.discriminator!.patch_ndf, c.discriminator!.patch_layers], [Math.min(64, 2 ** (14 - Math.log2(img))), Math.max(3, Math.log2(img) - 6)]);
    } else {
      assert.equal([t.use_patch_d, c.discriminator!.class, c.discriminator!.patch_ndf], [false, 'GramEncoderDiscriminator', null]);
    }
  }
  // each call is a fresh copy
  configByName('GRAM64_FFHQ').representation.center[2] = 0;
  assert.is(configByName('GRAM64_FFHQ').representation.center[2], -1.5);
});

test('the synthetic-heads configurations: stage one at 32, GRAM-HD 32 -> 128 on its representation', () => {
  const one = configByName('GRAM32_SYNTH');
  const hd = configByName('GRAMHD128_SYNTH') as GramHDConfig;
  assert.is(one.generator, 'GramGenerator');
  assert.equal([one.img_size, one.z_dim, one.representation.hidden_dim, one.renderer.num_manifolds, one.training!.dataset], [32, 64, 32, 12, 'AFHQCats']);
  assert.ok(isGramHD(hd));
  assert.equal([hd.lr_img_size, hd.img_size, hd.super_resolution.fg.w_dim], [one.img_size, 128, one.z_dim]);
  // GRAM-HD starts from the stage-one representation, so everything it shares must match
  assert.equal([hd.representation, hd.renderer, hd.camera, hd.pose, hd.z_dim], [one.representation, one.renderer, one.camera, one.pose, one.z_dim]);
  // the 4x SR network doubles twice in each branch
  assert.equal([hd.super_resolution.fg.up_channels.length, hd.super_resolution.bg.up_channels.length], [2, 2]);
  // the synthetic data's poses are drawn like FFHQ's
  assert.equal(one.pose, { sample_dist: 'gaussian', h_mean: Math.PI / 2, v_mean: Math.PI / 2, h_stddev: 0.3, v_stddev: 0.155 });
});

test('the golden cases\' configurations load as they are', () => {
  const gram = parseConfig(manifest.gram_small.config);
  assert.is(gram.generator, 'GramGenerator');
  assert.equal([gram.img_size, gram.representation.hidden_dim, gram.representation.hidden_dim_sample, gram.renderer.num_samples, gram.renderer.num_manifolds], [16, 32, 16, 24, 8]);
  assert.equal(gram.pose.h_stddev, 0.3);
  const hd = parseConfig(JSON.stringify(manifest.gramhd_small.config)) as GramHDConfig;
  assert.ok(isGramHD(hd));
  assert.equal([hd.feature_dim, hd.img_size, hd.lr_img_size], [8, 64, 16]);
  assert.equal(hd.super_resolution, manifest.gramhd_small.config.super_resolution);
});

test('named configurations survive a JSON round trip', () => {
  for (const name of CONFIG_NAMES) assert.equal(parseConfig(JSON.parse(JSON.stringify(configByName(name)))), configByName(name));
});

test('a malformed configuration is refused with the key at fault', () => {
  const base = manifest.gram_small.config;
  const withChange = (path: string[], value: unknown) => {
    const copy = JSON.parse(JSON.stringify(base));
    let o = copy;
    for (const key of path.slice(0, -1)) o = o[key];
    o[path[path.length - 1]] = value;
    return copy;
  };
  assert.throws(() => parseConfig(withChange(['representation', 'hidden_dim'], '32')), /representation\.hidden_dim: expected a number, got "32"/);
  assert.throws(() => parseConfig(withChange(['renderer', 'num_manifolds'], 1.5)), /renderer\.num_manifolds: expected an integer/);
  assert.throws(() => parseConfig(withChange(['renderer', 'num_sample'], 3)), /renderer: unknown key num_sample/);
  assert.throws(() => parseConfig(withChange(['generator'], 'Gram')), /generator: expected one of GramGenerator, GramHDGenerator/);
  assert.throws(() => parseConfig('{"generator": '), /config: not valid JSON/);
  const hd = JSON.parse(JSON.stringify(manifest.gramhd_small.config));
  hd.super_resolution.fg.up_channels = [16];
  assert.throws(() => parseConfig(hd), /super_resolution\.fg\.up_channels: 1 upsampling steps for a x4/);
});

test.run();
