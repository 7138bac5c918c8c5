// Loading a generator for inference: the authors' torch.save'd state_dict (.pt, with --config) or our
// safetensors, whose metadata `config` holds the configuration as JSON (or a configuration name).
// Our checkpoints may carry the truncation averages under avg_frequencies, avg_phase_shifts (and
// avg_style for GRAM-HD); they are not module state. A `gramhd train` checkpoint (G/-prefixed keys)
// renders its first EMA's weights.
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Tensor } from '../engine/index.ts';
import { toFloat32, type HostTensor } from '../engine/io/host-tensor.ts';
import { parseSafetensors } from '../engine/io/safetensors.ts';
import { parseTorchPt } from '../engine/io/torch-pt.ts';
import type { StateValue } from '../engine/nn/module.ts';
import type { Camera } from '../model/camera.ts';
import { buildGenerator, configFromText } from '../model/checkpoint.ts';
import { CONFIG_NAMES, parseConfig, type GeneratorConfig } from '../model/config.ts';
import { GramGenerator, type VisibleRenderOptions } from '../model/gram.ts';
import { GramHDGenerator } from '../model/gramhd.ts';
import { bake, bakeGram, view, viewGram, type GramBake, type GramHDBake } from '../model/orbit.ts';
import { freezeRepresentation } from '../train/gramhd-process.ts';
import { readFileBytes } from '../train/files.ts';

/** What the render command needs of a generator; GRAM and GRAM-HD plug in through small adapters. */
export interface Renderable {
  readonly config: GeneratorConfig;
  /** Whether render() also returns the low-res image (GRAM-HD). */
  readonly hasLowRes: boolean;
  /** get_avg_w from latents z [count, z_dim] (GRAM-HD feeds the same z to its SR mapping). */
  computeAverage(z: Tensor): void;
  /** image [B, 3, H, W] in [-1, 1], depth [B, H, W, 1], and lrImage [B, 3, h, w] for GRAM-HD.
   * imgSize (GRAM only) renders at that size instead of the configuration's. */
  render(z: Tensor, cameras: readonly Camera[], options: { truncationPsi: number; lockViewDependence: boolean; imgSize?: number }): { image: Tensor; depth: Tensor; lrImage?: Tensor };
  /** render() for outputs nothing is differentiated through (GRAM shades only the visible points
   * where that pays; lowRes false: GRAM-HD skips the low-res image). */
  renderVisible(z: Tensor, cameras: readonly Camera[], options: VisibleRenderOptions): Promise<{ image: Tensor; depth: Tensor; lrImage?: Tensor }>;
  /** What locked-view renders of one latent z [1, z_dim] share (model/orbit.ts): GRAM-HD's
   * super-resolved textures, GRAM's codes. Lives until its dispose(). */
  bake(z: Tensor, truncationPsi: number): RenderBake;
  /** Views of a bake with locked view dependence: equal to render() of its latent. imgSize (GRAM
   * only) renders at that size instead of the configuration's. */
  view(bake: RenderBake, cameras: readonly Camera[], imgSize?: number): Promise<{ image: Tensor; depth: Tensor; lrImage?: Tensor }>;
  dispose(): void;
}

/** A baked latent (opaque to the caller). */
export interface RenderBake {
  dispose(): void;
}

export interface LoadedCheckpoint {
  model: Renderable;
  /** The generator module itself (a training checkpoint's: with its first EMA's weights). */
  generator: GramGenerator | GramHDGenerator;
  config: GeneratorConfig;
  /** Whether the checkpoint held truncation averages (now set on the model). */
  storedAverage: boolean;
}

export { AVERAGE_KEYS } from '../model/checkpoint.ts';

/**
 * A configuration from a name (GRAM64_FFHQ, ...), JSON text, or a .json file; `where` names its
 * origin in errors.
 */
export function resolveConfig(value: string, where: string): GeneratorConfig {
  const fromText = configFromText(value, where);
  if (fromText) return fromText;
  const text = value.trim();
  if (text.endsWith('.json') && existsSync(text)) return parseConfig(readFileSync(text, 'utf8'), text);
  throw new Error(`${where}: '${value}' is neither a configuration name (${CONFIG_NAMES.join(', ')}), JSON, nor a .json file`);
}

class GramAdapter implements Renderable {
  readonly hasLowRes = false;
  constructor(readonly generator: GramGenerator) {}
  get config() { return this.generator.config; }
  computeAverage(z: Tensor) { this.generator.computeTruncationAverage(z); }
  render(z: Tensor, cameras: readonly Camera[], options: { truncationPsi: number; lockViewDependence: boolean; imgSize?: number }) {
    const { image, depth } = this.generator.forward(z, cameras, options);
    return { image, depth };
  }
  renderVisible(z: Tensor, cameras: readonly Camera[], options: VisibleRenderOptions) {
    return this.generator.renderVisible(z, cameras, options);
  }
  bake(z: Tensor, truncationPsi: number): RenderBake { return bakeGram(this.generator, z, truncationPsi); }
  async view(baked: RenderBake, cameras: readonly Camera[], imgSize?: number) {
    const { image, depth } = await viewGram(baked as GramBake, cameras, imgSize);
    return { image, depth };
  }
  dispose() { this.generator.dispose(); }
}

class GramHDAdapter implements Renderable {
  readonly hasLowRes = true;
  constructor(readonly generator: GramHDGenerator) {}
  get config() { return this.generator.config; }
  computeAverage(z: Tensor) { this.generator.computeTruncationAverage(z); }
  render(z: Tensor, cameras: readonly Camera[], options: { truncationPsi: number; lockViewDependence: boolean }) {
    const { image, depth, lrImage } = this.generator.forward(z, cameras, options);
    return { image, depth, lrImage };
  }
  renderVisible(z: Tensor, cameras: readonly Camera[], options: VisibleRenderOptions) {
    return this.generator.renderVisible(z, cameras, options);
  }
  bake(z: Tensor, truncationPsi: number): RenderBake { return bake(this.generator, z, { truncationPsi }); }
  async view(baked: RenderBake, cameras: readonly Camera[], imgSize?: number) {
    if (imgSize !== undefined && imgSize !== this.config.img_size) throw new Error(`GRAM-HD renders at its configuration's size (${this.config.img_size}); --img_size is for GRAM checkpoints`);
    const { image, depth, lrImage } = view(baked as GramHDBake, cameras, { lowRes: true });
    return { image, depth, lrImage: lrImage! };
  }
  dispose() { this.generator.dispose(); }
}

/**
 * The first EMA's shadows of a training checkpoint under the generator's keys: shadow_params.<i> is
 * the i-th parameter that required gradients during training (all of GRAM's; GRAM-HD's feature heads
 * and SR networks, its representation being frozen otherwise), in parameters() order.
 */
function emaWeights(generator: GramGenerator | GramHDGenerator, shadows: Map<number, HostTensor>, path: string): Map<string, StateValue> {
  const named = generator.namedParameters();
  const flags = named.map(([, p]) => p.requiresGrad);
  if (generator instanceof GramHDGenerator) freezeRepresentation(generator);
  const trainable = named.filter(([, p]) => p.requiresGrad);
  named.forEach(([, p], i) => { p.requiresGrad = flags[i]; });
  if (shadows.size !== trainable.length || trainable.some((_, i) => !shadows.has(i))) {
    throw new Error(`${path}: training checkpoint has ${shadows.size} ema/shadow_params for the generator's ${trainable.length} trained parameters`);
  }
  const out = new Map<string, StateValue>();
  trainable.forEach(([key, p], i) => {
    const t = shadows.get(i)!;
    if (t.shape.join(',') !== p.shape.join(',')) throw new Error(`${path}: ema/shadow_params.${i} [${t.shape.join(',')}] does not fit ${key} [${p.shape.join(',')}]`);
    out.set(key, { shape: t.shape, data: toFloat32(t, `${path}: ema/shadow_params.${i}`) });
  });
  return out;
}

/**
 * Reads `path` (.pt or .safetensors) and builds the generator on the engine's device. `config`
 * (name, JSON or .json file) is required for .pt files and overrides a safetensors file's metadata.
 * Every failure is one line naming the file.
 */
export async function loadGenerator(path: string, config?: string): Promise<LoadedCheckpoint> {
  const bytes = await readFileBytes(path);
  let tensors: Map<string, HostTensor>;
  let resolved: GeneratorConfig;
  if (path.endsWith('.safetensors')) {
    const file = parseSafetensors(bytes, path);
    tensors = file.tensors;
    const stored = file.metadata.config;
    if (config !== undefined) resolved = resolveConfig(config, '--config');
    else if (stored !== undefined) resolved = resolveConfig(stored, `${path}: metadata config`);
    else throw new Error(`${path}: no configuration in the metadata; name one with --config`);
  } else {
    if (config === undefined) throw new Error(`${path}: a torch checkpoint carries no configuration; name one with --config`);
    resolved = resolveConfig(config, '--config');
    tensors = parseTorchPt(bytes, path);
  }
  // a `gramhd train` checkpoint (G/, D/, ema/, ema2/, optG/, optD/): the generator with its first
  // EMA's shadows in place of the trainable weights (the EMA generator is the one to render)
  let emaShadows: Map<number, HostTensor> | null = null;
  if ([...tensors.keys()].some((k) => k.startsWith('G/'))) {
    const generatorTensors = new Map<string, HostTensor>();
    emaShadows = new Map();
    for (const [key, t] of tensors) {
      if (key.startsWith('G/')) generatorTensors.set(key.slice(2), t);
      const m = /^ema\/shadow_params\.(\d+)$/.exec(key);
      if (m) emaShadows.set(Number(m[1]), t);
    }
    tensors = generatorTensors;
  }
  const shadows = emaShadows;
  const { generator, storedAverage } = buildGenerator(tensors, resolved, path, shadows ? (g) => emaWeights(g, shadows, path) : undefined);
  const model = generator instanceof GramHDGenerator ? new GramHDAdapter(generator) : new GramAdapter(generator);
  return { model, generator, config: resolved, storedAverage };
}

/** The checkpoint shipped in ckpts/ (trained on `gramhd data synth` heads; ckpts/README.md says
 * how), which commands use when no --ckpt is given. */
export const SHIPPED_CHECKPOINT = fileURLToPath(new URL('../ckpts/GRAM32_SYNTH.safetensors', import.meta.url));

/** --ckpt, or the shipped checkpoint when it was left out. */
export function checkpointOrShipped(ckpt: string | undefined): string {
  if (ckpt !== undefined) return ckpt;
  if (!existsSync(SHIPPED_CHECKPOINT)) throw new Error(`no --ckpt given and the shipped checkpoint ${SHIPPED_CHECKPOINT} is missing (a clean checkout has it under ckpts/)`);
  return SHIPPED_CHECKPOINT;
}
