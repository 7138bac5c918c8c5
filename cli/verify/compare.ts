// Comparing this port with the golden vectors (test/golden/README.md): each case's outputs against
// the float64 truth of the authors' PyTorch code, by relative Frobenius error, within a multiple of
// the drift that honest float32 arithmetic showed in torch itself.
import { toFloat32, type HostTensor } from '../../engine/io/host-tensor.ts';
import { Tensor } from '../../engine/tensor.ts';
import type { Collective } from '../../train/collective.ts';

/** One output of a case in manifest.json. */
export interface ManifestOutput {
  shape: number[];
  /** Relative Frobenius error of torch's own float32 run against its float64 run. */
  torch_f32_rel_err: number;
  torch_f32_max_abs_err: number;
  note?: string;
}

/** A case's entry in manifest.json. */
export interface ManifestCase {
  description?: string;
  config: Record<string, unknown>;
  outputs: Record<string, ManifestOutput>;
  /** Shape of every tensor in the case's safetensors file. */
  tensors: Record<string, number[]>;
}

/** What a case runner gets: its manifest entry and the tensors of `<case>.safetensors`. */
export interface GoldenCase {
  name: string;
  file: string;
  entry: ManifestCase;
  tensors: Map<string, HostTensor>;
  /** The MPI world when `gramhd verify` runs under mpiexec: the training cases split their batch over it. */
  world?: Collective;
}

/** One compared output: its relative error, the error allowed and whether it is within it. */
export interface VerifyRow {
  output: string;
  relErr: number;
  allowed: number;
  pass: boolean;
}

export type CaseRunner = (golden: GoldenCase) => Promise<VerifyRow[]>;

/** Forward outputs are held to max(100 x torch's float32 drift, 1e-4); gradients and updated
 * parameters, which accumulate more rounding, to max(100 x drift, 1e-3). */
export type OutputKind = 'forward' | 'gradient';

export function allowedError(golden: GoldenCase, output: string, kind: OutputKind): number {
  const drift = golden.entry.outputs[output]?.torch_f32_rel_err;
  if (drift === undefined) throw new Error(`${golden.file}: manifest.json lists no output '${output}' for case ${golden.name}`);
  return Math.max(100 * drift, kind === 'forward' ? 1e-4 : 1e-3);
}

/** The golden tensor `name` as float32 host data with its shape. */
export function goldenTensor(golden: GoldenCase, name: string): { shape: number[]; data: Float32Array } {
  const t = golden.tensors.get(name);
  if (!t) throw new Error(`${golden.file}: no tensor '${name}'`);
  return { shape: t.shape, data: toFloat32(t, `${golden.file}: ${name}`) };
}

/** The golden tensor `name` uploaded to the GPU. */
export function goldenInput(golden: GoldenCase, name: string): Tensor {
  const { shape, data } = goldenTensor(golden, name);
  return Tensor.fromData(data, shape);
}

/** |ours - truth| / |truth| in float64 (Frobenius norms; absolute when the truth is zero). */
export function relativeError(ours: ArrayLike<number>, truth: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < truth.length; i++) {
    num += (ours[i] - truth[i]) ** 2;
    den += truth[i] ** 2;
  }
  return den === 0 ? Math.sqrt(num) : Math.sqrt(num / den);
}

/** Compares our value of a golden output with its truth. */
export async function compareOutput(golden: GoldenCase, output: string, ours: Tensor, kind: OutputKind): Promise<VerifyRow> {
  const truth = goldenTensor(golden, output);
  if (ours.shape.length !== truth.shape.length || ours.shape.some((s, d) => s !== truth.shape[d])) {
    throw new Error(`${golden.name} ${output}: computed shape [${ours.shape.join(', ')}], golden [${truth.shape.join(', ')}]`);
  }
  const relErr = relativeError(await ours.toFloat32(), truth.data);
  const allowed = allowedError(golden, output, kind);
  // a NaN error fails
  return { output, relErr, allowed, pass: relErr <= allowed };
}

/** The `param/<state_dict key>` tensors of a case as a state dict for Module.loadStateDict. */
export function goldenState(golden: GoldenCase, prefix = 'param/'): Map<string, { shape: number[]; data: Float32Array }> {
  const state = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const name of golden.tensors.keys()) if (name.startsWith(prefix)) state.set(name.slice(prefix.length), goldenTensor(golden, name));
  return state;
}

/** Compares a 0/1 mask: the error is the fraction of entries that differ, allowed up to `allowed`
 * (rays grazing a level may fall either way in float32). */
export async function compareMask(golden: GoldenCase, output: string, ours: Tensor, allowed = 0.01): Promise<VerifyRow> {
  const truth = goldenTensor(golden, output);
  if (ours.shape.length !== truth.shape.length || ours.shape.some((s, d) => s !== truth.shape[d])) {
    throw new Error(`${golden.name} ${output}: computed shape [${ours.shape.join(', ')}], golden [${truth.shape.join(', ')}]`);
  }
  const values = await ours.toFloat32();
  let differ = 0;
  for (let i = 0; i < values.length; i++) if ((values[i] > 0.5) !== (truth.data[i] > 0.5)) differ++;
  const relErr = differ / Math.max(1, values.length);
  return { output, relErr, allowed, pass: relErr <= allowed };
}
