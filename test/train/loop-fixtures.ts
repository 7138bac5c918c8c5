// Fixtures for the training-loop tests: a tiny AFHQ-layout dataset of coloured discs whose position
// follows the yaw, and a tiny GRAM configuration (16x16, hidden 32, D capped at 32 channels).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { encodeNpy } from '../../train/npy.ts';

/** `count` size x size PNGs: a bright disc on a dark background, shifted left/right with the yaw;
 * poses/<name>_pose.npy holds (pitch - 0.14, yaw) so the AFHQ loader reads back (pitch, yaw). */
export function writeDiscDataset(dir: string, count = 16, size = 16): void {
  mkdirSync(join(dir, 'poses'), { recursive: true });
  for (let i = 0; i < count; i++) {
    const yaw = Math.PI / 2 + ((i % 8) - 3.5) * 0.08;
    const pitch = Math.PI / 2 + ((i % 3) - 1) * 0.05;
    const cx = size / 2 + (yaw - Math.PI / 2) * size * 0.8;
    const cy = size / 2 - (pitch - Math.PI / 2) * size * 0.8;
    const r = size * 0.3;
    const hue = i % 4;
    const color = [[230, 90, 60], [60, 200, 90], [70, 110, 230], [220, 200, 60]][hue];
    const png = new PNG({ width: size, height: size });
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        const inside = (x + 0.5 - cx) ** 2 + (y + 0.5 - cy) ** 2 < r * r;
        const o = (y * size + x) * 4;
        png.data[o] = inside ? color[0] : 20;
        png.data[o + 1] = inside ? color[1] : 20;
        png.data[o + 2] = inside ? color[2] : 30;
        png.data[o + 3] = 255;
      }
    }
    const name = String(i).padStart(5, '0');
    writeFileSync(join(dir, `${name}.png`), PNG.sync.write(png));
    writeFileSync(join(dir, 'poses', `${name}_pose.npy`), encodeNpy(new Float64Array([pitch - 0.14, yaw]), [2]));
  }
}

/** A tiny GRAM configuration with a training block (JSON-ready, parseConfig accepts it). */
export function tinyConfig(overrides: { batch?: number; hidden?: number; genLr?: number; discLr?: number } = {}): Record<string, unknown> {
  const hidden = overrides.hidden ?? 32;
  return {
    name: 'tiny_gram',
    generator: 'GramGenerator',
    z_dim: 32,
    img_size: 16,
    representation: { hidden_dim: hidden, hidden_dim_sample: 16, layer_num_sample: 3, center: [0, 0, -1.5], init_radius: 0 },
    renderer: { num_samples: 12, num_manifolds: 6, levels_start: 23, levels_end: 8 },
    discriminator: { class: 'GramEncoderDiscriminator', img_size: 16, max_channels: 32 },
    training: {
      process: 'Gan3DProcess', batch_size: overrides.batch ?? 4, batch_split: 1,
      gen_lr: overrides.genLr ?? 2e-4, disc_lr: overrides.discLr ?? 2e-4, betas: [0, 0.9],
      r1_lambda: 1, pos_lambda: 15, real_pos_lambda: 15, dataset: 'AFHQCats',
    },
  };
}
