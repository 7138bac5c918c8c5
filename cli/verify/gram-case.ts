// The golden `gram_small` case: the GRAM generator (stage one) with the authors' weights, two latent
// codes each rendered from its own camera; every intermediate of the reference renderer is compared,
// then a render truncated at psi 0.7 with the stored averages.
import { noGrad, tidyAsync, type Tensor } from '../../engine/index.ts';
import { Random } from '../../engine/nn/random.ts';
import type { Camera } from '../../model/camera.ts';
import { parseConfig } from '../../model/config.ts';
import { GramGenerator } from '../../model/gram.ts';
import { compareMask, compareOutput, goldenInput, goldenState, goldenTensor, type GoldenCase, type VerifyRow } from './compare.ts';

/** The cameras of a golden case: `in/camera_origin` [B, 3] and `in/camera_pose` [B, 2] (pitch, yaw). */
export function goldenCameras(golden: GoldenCase): Camera[] {
  const origins = goldenTensor(golden, 'in/camera_origin');
  const poses = goldenTensor(golden, 'in/camera_pose');
  return Array.from({ length: origins.shape[0] }, (_, b) => ({
    origin: [origins.data[3 * b], origins.data[3 * b + 1], origins.data[3 * b + 2]],
    pitch: poses.data[2 * b],
    yaw: poses.data[2 * b + 1],
  }));
}

/** The case's generator with the authors' weights and truncation averages loaded. */
export function goldenGramGenerator(golden: GoldenCase): GramGenerator {
  const generator = new GramGenerator(parseConfig(golden.entry.config, `${golden.name} config`), new Random(0));
  generator.loadStateDict(goldenState(golden));
  noGrad(() => generator.setTruncationAverage({
    frequencies: goldenInput(golden, 'in/avg_frequencies'),
    phase_shifts: goldenInput(golden, 'in/avg_phase_shifts'),
  }));
  return generator;
}

export async function gramCase(golden: GoldenCase): Promise<VerifyRow[]> {
  const generator = goldenGramGenerator(golden);
  try {
    return await tidyAsync(async () => {
      const z = goldenInput(golden, 'in/z');
      const cameras = goldenCameras(golden);
      const out = noGrad(() => generator.forward(z, cameras, { intermediates: true }));
      const truncated = noGrad(() => generator.forward(z, cameras, { truncationPsi: 0.7 }));
      const steps = out.intermediates!;
      const outputs: Record<string, Tensor> = {
        'out/frequencies': out.frequencies,
        'out/phase_shifts': out.phase_shifts,
        'out/sample_points': steps.samplePoints,
        'out/levels': steps.levels,
        'out/scalar_field': steps.scalarField,
        'out/intersections': steps.intersections,
        'out/radiance': steps.radiance,
        'out/image': out.image,
        'out/depth': out.depth,
        'out/image_truncated_0.7': truncated.image,
      };
      const rows: VerifyRow[] = [];
      for (const output of Object.keys(golden.entry.outputs)) {
        if (output === 'out/is_valid') {
          rows.push(await compareMask(golden, output, steps.isValid));
          continue;
        }
        const ours = outputs[output];
        if (!ours) throw new Error(`case ${golden.name}: ${golden.file} has an output '${output}' that this port does not compute`);
        rows.push(await compareOutput(golden, output, ours, 'forward'));
      }
      return rows;
    });
  } finally {
    generator.dispose();
  }
}
