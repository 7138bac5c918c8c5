// The golden `disc_small` case: GRAM-HD's patch discriminator at 32x32 (channel cap 32, PatchGAN
// width 8) loaded with the stored weights, its three outputs on the stored images, and the R1 input
// gradients with and without the patch head.
import { tidyAsync, type Tensor } from '../../engine/index.ts';
import { GramEncoderPatchDiscriminator } from '../../model/discriminator/gram-encoder.ts';
import { r1Gradient } from '../../model/discriminator/r1.ts';
import { compareOutput, goldenInput, goldenTensor, type GoldenCase, type OutputKind, type VerifyRow } from './compare.ts';

/** patch_lambda of the GRAM-HD configurations, with which the reference computed out/r1_grad_with_patch. */
const PATCH_LAMBDA = 0.1;

interface DiscConfig {
  img_size: number;
  max_channels: number;
  patch_ndf: number;
  patch_layers: number;
  norm: string;
}

/** The discriminator of a golden case's config, loaded with its `param/<state_dict key>` tensors. */
export function goldenDiscriminator(golden: GoldenCase): GramEncoderPatchDiscriminator {
  const config = golden.entry.config as unknown as DiscConfig;
  if (config.norm !== 'identity') throw new Error(`${golden.name}: only norm 'identity' is supported (GRAM-HD's), got '${config.norm}'`);
  const d = new GramEncoderPatchDiscriminator(config.img_size, {
    maxChannels: config.max_channels, patchNdf: config.patch_ndf, patchLayers: config.patch_layers,
  });
  const params = new Map([...golden.tensors.keys()].filter((k) => k.startsWith('param/')).map((k) => [k.slice('param/'.length), goldenTensor(golden, k)]));
  try {
    d.loadStateDict(params);
  } catch (error) {
    for (const p of d.parameters()) p.dispose();
    throw error;
  }
  return d;
}

export async function discCase(golden: GoldenCase): Promise<VerifyRow[]> {
  const d = goldenDiscriminator(golden);
  try {
    return await tidyAsync(async () => {
      const image = goldenInput(golden, 'in/image');
      image.requiresGrad = true;
      const out = d.forward(image);
      const outputs: Record<string, [() => Tensor, OutputKind]> = {
        'out/prediction': [() => out.prediction, 'forward'],
        'out/position': [() => out.position, 'forward'],
        'out/patch': [() => out.patch, 'forward'],
        'out/r1_grad': [() => r1Gradient(out, image), 'gradient'],
        'out/r1_grad_with_patch': [() => r1Gradient(out, image, PATCH_LAMBDA), 'gradient'],
      };
      const rows: VerifyRow[] = [];
      for (const output of Object.keys(golden.entry.outputs)) {
        const entry = outputs[output];
        if (!entry) throw new Error(`case ${golden.name}: ${golden.file} has an output '${output}' that this port does not compute`);
        rows.push(await compareOutput(golden, output, entry[0](), entry[1]));
      }
      return rows;
    });
  } finally {
    for (const p of d.parameters()) p.dispose();
  }
}
