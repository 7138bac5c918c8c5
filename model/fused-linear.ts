// Linear layers fused with what follows them (kernels/film-siren.ts): the dispatch both fused
// layers share, and the sample network's linear + ReLU. Each fused op keeps its op-level reference
// path callable; the tests hold the two equal.
import { fusedLinearGroups, fusedLinearKernel, fusedLinearUniforms, GPU_LINEAR_TILE, type LinearEpilogue } from '../kernels/film-siren.ts';
import { engineDevice, ops, Tensor } from '../engine/index.ts';
import { record } from '../engine/autograd.ts';
import { dispatch } from '../engine/runtime.ts';

export type FusedImpl = 'fused' | 'reference';

/** The subgroup size of a CPU adapter whose subgroups have one fixed size (the subgroup kernel's
 * workgroup is exactly one subgroup), else null: GPUs take the tiled or the block kernel. */
function cpuSubgroupSize(): number | null {
  const { device, info } = engineDevice();
  if (!info.isSoftware || !info.features.has('subgroups')) return null;
  const { subgroupMinSize: min, subgroupMaxSize: max } = (device as GPUDevice & { adapterInfo?: { subgroupMinSize?: number; subgroupMaxSize?: number } }).adapterInfo ?? {};
  return min !== undefined && min === max && [4, 8, 16, 32].includes(min) ? min : null;
}

/** Which kernel shape runs: the adapter's best ('auto'), or a named one (the tests run each). */
export type KernelShape = 'auto' | 'block' | 'tiled' | 'subgroup';

/** y [B, N, out] = epilogue(x [B, N, in] W^T + bias) in one dispatch; `modulation` holds the FiLM
 * freq and phase [B, out] for 'film-sine'. Records no gradient. */
export function fusedLinearForward(epilogue: LinearEpilogue, x: Tensor, weight: Tensor, bias: Tensor, modulation: Tensor[] = [], shape: KernelShape = 'auto'): Tensor {
  const [batch, rows, inFeatures] = x.shape;
  const p = { batch, rows, inFeatures, outFeatures: weight.shape[0] };
  const y = Tensor.empty([batch, rows, p.outFeatures]);
  if (y.size === 0) return y;
  const vec4Loads = inFeatures % 4 === 0;
  const lanes = shape === 'auto' || shape === 'subgroup' ? cpuSubgroupSize() : null;
  if (shape === 'subgroup' && lanes === null) throw new Error('fused linear: the subgroup kernel needs a CPU adapter with one fixed subgroup size');
  if (shape === 'tiled' && !vec4Loads) throw new Error(`fused linear: the tiled kernel needs in a multiple of 4, not ${inFeatures}`);
  const tiled = shape === 'tiled' || (shape === 'auto' && lanes === null && vec4Loads);
  const spec = { epilogue, vec4Loads, subgroupSize: lanes, tile: tiled ? GPU_LINEAR_TILE : null };
  dispatch(fusedLinearKernel(spec), [x.buffer, weight.buffer, bias.buffer, ...modulation.map((t) => t.buffer), y.buffer],
    fusedLinearUniforms(p), fusedLinearGroups(spec, p));
  return y;
}

/**
 * relu(x W^T + b) for x [..., in], weight [out, in], bias [out] -> [..., out]. The fused gradient
 * uses the output as the mask (y > 0 exactly where x W^T + b > 0): g_h = g [y > 0],
 * dx = g_h W, dW = g_h^T x, db = sum g_h.
 */
export function linearRelu(x: Tensor, weight: Tensor, bias: Tensor, impl: FusedImpl = 'fused'): Tensor {
  const inF = x.shape[x.rank - 1];
  const out = weight.shape[0];
  if (weight.rank !== 2 || weight.shape[1] !== inF || bias.shape.join() !== `${out}`) {
    throw new Error(`linearRelu: x [${x.shape.join(', ')}] does not fit weight [${weight.shape.join(', ')}] and bias [${bias.shape.join(', ')}]`);
  }
  if (impl === 'reference') return ops.relu(ops.linear(x, weight, bias));
  const rows = x.size / inF;
  const flatX = ops.reshape(x, [1, rows, inF]);
  const y = record(fusedLinearForward('relu', flatX, weight, bias), 'linearRelu', [flatX, weight, bias], (g) => {
    const gh = ops.reshape(ops.mul(g, ops.gt(y, 0)), [rows, out]);
    return [
      flatX.requiresGrad ? ops.reshape(ops.matmul(gh, weight), [1, rows, inF]) : null,
      weight.requiresGrad ? ops.matmul(gh, ops.reshape(flatX, [rows, inF]), { transA: true }) : null,
      bias.requiresGrad ? ops.sum(gh, 0) : null,
    ];
  });
  return ops.reshape(y, [...x.shape.slice(0, -1), out]);
}
