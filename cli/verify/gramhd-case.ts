// The golden `gramhd_small` case: the GRAM-HD generator with the authors' weights, two latent codes
// each rendered from its own camera: the low-res render, the gridded manifold features, both SR
// networks, the textures and the high-res image and depth; then a render truncated at psi 0.7 with
// the stored averages.
import { noGrad, tidyAsync, type Tensor } from '../../engine/index.ts';
import { Random } from '../../engine/nn/random.ts';
import { parseConfig } from '../../model/config.ts';
import { GramHDGenerator } from '../../model/gramhd.ts';
import type { StateValue } from '../../engine/nn/module.ts';
import { compareOutput, goldenInput, goldenState, type GoldenCase, type VerifyRow } from './compare.ts';
import { goldenCameras } from './gram-case.ts';

/** The case's generator with `state` (default: the case's `param/*` tensors) and the stored
 * truncation averages loaded. */
export function goldenGramHDGenerator(golden: GoldenCase, state: Map<string, StateValue> = goldenState(golden)): GramHDGenerator {
  const generator = new GramHDGenerator(parseConfig(golden.entry.config, `${golden.name} config`), new Random(0));
  try {
    generator.loadStateDict(state);
    noGrad(() => generator.setTruncationAverages({
      frequencies: goldenInput(golden, 'in/avg_frequencies'),
      phase_shifts: goldenInput(golden, 'in/avg_phase_shifts'),
    }, goldenInput(golden, 'in/avg_style')));
  } catch (error) {
    generator.dispose();
    throw error;
  }
  return generator;
}

/** Runs every output of a GRAM-HD golden case against `generator`. */
export async function gramhdRows(golden: GoldenCase, generator: GramHDGenerator): Promise<VerifyRow[]> {
  return tidyAsync(async () => {
    const z = goldenInput(golden, 'in/z');
    const cameras = goldenCameras(golden);
    const out = noGrad(() => generator.forward(z, cameras, { intermediates: true }));
    const truncated = noGrad(() => generator.forward(z, cameras, { truncationPsi: 0.7 }));
    const steps = out.superResolution!;
    const outputs: Record<string, Tensor | null> = {
      'out/hr_image': out.image,
      'out/lr_image': out.lrImage,
      'out/hr_rgba': out.hrRgba,
      'out/lr_rgba': out.lrRgba,
      'out/lr_depth': out.lrDepth,
      'out/hr_depth': out.depth,
      'out/lr_features': steps.lrFeatures,
      'out/sr_out': steps.srOut,
      'out/sr_bg_in': steps.srBgIn,
      'out/sr_bg_out': steps.srBgOut,
      'out/hr_image_truncated_0.7': truncated.image,
    };
    const rows: VerifyRow[] = [];
    for (const output of Object.keys(golden.entry.outputs)) {
      const ours = outputs[output];
      if (!ours) throw new Error(`case ${golden.name}: ${golden.file} has an output '${output}' that this port does not compute`);
      rows.push(await compareOutput(golden, output, ours, 'forward'));
    }
    return rows;
  });
}

export async function gramhdCase(golden: GoldenCase): Promise<VerifyRow[]> {
  const generator = goldenGramHDGenerator(golden);
  try {
    return await gramhdRows(golden, generator);
  } finally {
    generator.dispose();
  }
}
