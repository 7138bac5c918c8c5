// The golden `ops` case: the stand-alone tensor operations the renderer and super-resolution use
// (interpolate, pixel shuffle, average pooling, grid sampling, the consistency downsampler), each
// applied to the stored inputs as the reference script applied them.
import { ops, tidyAsync, type Tensor } from '../../engine/index.ts';
import { compareOutput, goldenInput, type GoldenCase, type VerifyRow } from './compare.ts';

export async function opsCase(golden: GoldenCase): Promise<VerifyRow[]> {
  return tidyAsync(async () => {
    const [x, xBicubic, grid] = ['in/x', 'in/x_bicubic', 'in/grid'].map((name) => goldenInput(golden, name));
    const outputs: Record<string, () => Tensor> = {
      'out/interpolate_bilinear_x2': () => ops.interpolate(x, { scale: 2 }, 'bilinear'),
      'out/interpolate_bilinear_x4_align_corners': () => ops.interpolate(x, { scale: 4 }, 'bilinear', true),
      'out/interpolate_bicubic_x4': () => ops.interpolate(x, { scale: 4 }, 'bicubic'),
      // pixel_shuffle of the first 4 of in/x's 5 channels
      'out/pixel_shuffle_x2': () => ops.pixelShuffle(ops.narrow(x, 1, 0, 4), 2),
      'out/bicubic_downsample_x2': () => ops.bicubicDownsample(x, 2),
      'out/avg_pool2d_2': () => ops.avgPool2d(x, 2),
      'out/grid_sample_zeros': () => ops.gridSample(x, grid, { padding: 'zeros' }),
      'out/grid_sample_reflection': () => ops.gridSample(x, grid, { padding: 'reflection' }),
      'out/bicubic_downsample_x4': () => ops.bicubicDownsample(xBicubic, 4),
    };
    const rows: VerifyRow[] = [];
    for (const output of Object.keys(golden.entry.outputs)) {
      const compute = outputs[output];
      if (!compute) throw new Error(`case ops: ${golden.file} has an output '${output}' that this port does not compute`);
      rows.push(await compareOutput(golden, output, compute(), 'forward'));
    }
    return rows;
  });
}
