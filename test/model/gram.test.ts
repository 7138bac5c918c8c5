import { test } from 'uvu';
import * as assert from 'uvu/assert';
import '../helpers/gpu.ts';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { grad, noGrad, ops, poolStats, Tensor, tidy, tidyAsync } from '../../engine/index.ts';
import { toFloat32 } from '../../engine/io/host-tensor.ts';
import { parseSafetensors } from '../../engine/io/safetensors.ts';
import { parseTorchPt } from '../../engine/io/torch-pt.ts';
import { Random } from '../../engine/nn/random.ts';
import { compareOutput, goldenInput, goldenState, type GoldenCase } from '../../cli/verify/compare.ts';
import { goldenCameras, goldenGramGenerator, gramCase } from '../../cli/verify/gram-case.ts';
import { cameraFromPose, cameraRotation, linspace, planeIntersections, sampleCameras, worldRays } from '../../model/camera.ts';
import { configByName, DEFAULT_POSE, parseConfig, type GramHDConfig } from '../../model/config.ts';
import { GramGenerator, GramRepresentation, renderManifolds, renderManifoldsSparse } from '../../model/gram.ts';
import { intersectManifolds } from '../../model/intersection.ts';
import { assertClose, checkOp } from '../helpers/reference.ts';
import { goldenDir } from '../helpers/golden.ts';

const manifest = JSON.parse(readFileSync(join(goldenDir, 'manifest.json'), 'utf8'));

function loadCase(name: string): GoldenCase {
  const file = join(goldenDir, `${name}.safetensors`);
  const { tensors } = parseSafetensors(new Uint8Array(readFileSync(file)), file);
  return { name, file, entry: manifest[name], tensors };
}

const golden = loadCase('gram_small');

test('gram_small: every output of the reference renderer within its allowed error', async () => {
  const rows = await gramCase(golden);
  assert.equal(rows.map((r) => r.output).sort(), Object.keys(manifest.gram_small.outputs).sort());
  for (const row of rows) {
    console.log(`  ${row.output.padEnd(24)} ${row.relErr.toExponential(2)} (allowed ${row.allowed.toExponential(2)})`);
    assert.ok(row.pass, `${row.output}: ${row.relErr} > ${row.allowed}`);
  }
});

test('state_dict keys and order are the authors\'', () => {
  const generator = new GramGenerator(parseConfig(manifest.gram_small.config), new Random(0));
  const authors = [...golden.tensors.keys()].filter((k) => k.startsWith('param/')).map((k) => k.slice('param/'.length));
  assert.equal([...generator.stateDict().keys()], authors);
  generator.dispose();
});

test('the authors\' torch.save checkpoint (.pt) loads and renders the same image', async () => {
  const file = join(goldenDir, 'gram_small.pt');
  const pt = parseTorchPt(new Uint8Array(readFileSync(file)), file);
  const generator = new GramGenerator(parseConfig(manifest.gram_small.config), new Random(5));
  generator.loadStateDict(new Map([...pt].map(([key, t]) => [key, { shape: t.shape, data: toFloat32(t, key) }])));
  const row = await tidyAsync(async () => {
    const z = Tensor.fromData(toFloat32(golden.tensors.get('in/z')!, 'in/z'), [2, 256]);
    const out = noGrad(() => generator.forward(z, goldenCameras(golden)));
    return compareOutput(golden, 'out/image', out.image, 'forward');
  });
  assert.ok(row.pass, `image from the .pt weights: ${row.relErr} > ${row.allowed}`);
  generator.dispose();
});

test('the sparse render (radiance at valid intersections only) gives the golden image and depth, and the dense render\'s', async () => {
  const generator = goldenGramGenerator(golden);
  const config = parseConfig(manifest.gram_small.config);
  const settings = { camera: config.camera, renderer: config.renderer, imgSize: config.img_size };
  const rows = await tidyAsync(async () => {
    const z = goldenInput(golden, 'in/z');
    const codes = noGrad(() => generator.representation.rf_network.mapping_network.forward(z));
    // uneven chunks: 256 rays as 100 + 100 + 56
    const sparse = await renderManifoldsSparse(generator.representation, codes, goldenCameras(golden), settings, { chunkRays: 100 });
    const dense = noGrad(() => renderManifolds(generator.representation, codes, goldenCameras(golden), settings));
    const d = Math.max(...(await ops.abs(ops.sub(sparse.image, dense.image)).data()), ...(await ops.abs(ops.sub(sparse.depth, dense.depth)).data()));
    assert.ok(d < 1e-6, `sparse and dense renders differ by ${d}`);
    return [await compareOutput(golden, 'out/image', sparse.image, 'forward'), await compareOutput(golden, 'out/depth', sparse.depth, 'forward')];
  });
  for (const row of rows) assert.ok(row.pass, `${row.output}: ${row.relErr} > ${row.allowed}`);
  generator.dispose();
});

test('renderVisible, sparse and dense, gives the golden image and the truncated one', async () => {
  const generator = goldenGramGenerator(golden);
  const rows = await tidyAsync(async () => {
    const z = goldenInput(golden, 'in/z');
    const out = [];
    for (const shading of ['sparse', 'dense'] as const) {
      const plain = await generator.renderVisible(z, goldenCameras(golden), { shading, chunkRays: 100 });
      const truncated = await generator.renderVisible(z, goldenCameras(golden), { shading, truncationPsi: 0.7 });
      out.push(await compareOutput(golden, 'out/image', plain.image, 'forward'), await compareOutput(golden, 'out/depth', plain.depth, 'forward'),
        await compareOutput(golden, 'out/image_truncated_0.7', truncated.image, 'forward'));
    }
    return out;
  });
  assert.is(rows.length, 6);
  for (const row of rows) assert.ok(row.pass, `${row.output}: ${row.relErr} > ${row.allowed}`);
  generator.dispose();
});

test('the GRAM-HD representation (with feature heads) loads gramhd_small and renders its low-res image', async () => {
  const hd = loadCase('gramhd_small');
  const config = parseConfig(manifest.gramhd_small.config);
  const representation = new GramRepresentation(config, new Random(0));
  const prefix = 'representation.';
  const state = new Map([...goldenState(hd)].filter(([k]) => k.startsWith(prefix)).map(([k, v]) => [k.slice(prefix.length), v]));
  representation.loadStateDict(state);
  const rows = await tidyAsync(async () => {
    const z = goldenInput(hd, 'in/z');
    const out = noGrad(() => renderManifolds(representation, representation.rf_network.mapping_network.forward(z), goldenCameras(hd),
      { camera: config.camera, renderer: config.renderer, imgSize: (config as GramHDConfig).lr_img_size }));
    return [await compareOutput(hd, 'out/lr_image', out.image, 'forward'), await compareOutput(hd, 'out/lr_depth', out.depth, 'forward')];
  });
  for (const row of rows) assert.ok(row.pass, `${row.output}: ${row.relErr} > ${row.allowed}`);
  for (const t of representation.stateDict().values()) t.dispose();
  representation.sample_network.dispose();
});

// ---- cameras, against the reference's formulas written out in float64 ----

/** The reference's cam2world: T(origin) @ R with R's columns (-left, up, -forward), 4x4 row-major. */
function referenceCam2World(o: number[]): number[][] {
  const norm = (v: number[]) => { const n = Math.hypot(...v); return v.map((x) => x / n); };
  const cross = (a: number[], b: number[]) => [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];
  const f = norm(o.map((x) => -x));
  const l = norm(cross([0, 1, 0], f));
  const u = norm(cross(f, l));
  return [[-l[0], u[0], -f[0], o[0]], [-l[1], u[1], -f[1], o[1]], [-l[2], u[2], -f[2], o[2]], [0, 0, 0, 1]];
}

test('camera: origins from poses, cam2world and sample points match the reference formulas', async () => {
  const cameras = goldenCameras(golden);
  const storedOrigins = toFloat32(golden.tensors.get('in/camera_origin')!, 'origin');
  cameras.forEach((c, b) => {
    const fromPose = cameraFromPose(c.pitch, c.yaw).origin;
    fromPose.forEach((v, k) => assert.ok(Math.abs(v - storedOrigins[3 * b + k]) < 1e-6, `origin ${b}.${k}: ${v} vs ${storedOrigins[3 * b + k]}`));
  });
  // a frontal camera sits on +z looking down -z, with +y up and +x to the right
  assert.equal(cameraFromPose(Math.PI / 2, Math.PI / 2).origin.map((v) => Math.round(v * 1e12) / 1e12), [0, 0, 1]);
  assert.equal(cameraFromPose(-1, 0).pitch, 1e-5);

  const size = 5;
  const s = 4;
  const fov = 12;
  const depths = linspace(0.88, 1.12, s);
  for (const cam of [...cameras, cameraFromPose(1.2, 2.1)]) {
    const m = referenceCam2World(cam.origin);
    const rot = cameraRotation(cam.origin);
    for (let r = 0; r < 3; r++) for (let c = 0; c < 3; c++) assert.ok(Math.abs(rot[3 * r + c] - m[r][c]) < 1e-15);
    const rays = worldRays(cam, size, size, fov);
    const z = -1 / Math.tan((2 * Math.PI * fov) / 360 / 2);
    for (let row = 0; row < size; row++) {
      for (let col = 0; col < size; col++) {
        // reference: the pixel's camera-space direction, normalised, scaled by each depth, then cam2world
        const x = -1 + (2 * col) / (size - 1);
        const y = 1 - (2 * row) / (size - 1);
        const n = Math.hypot(x, y, z);
        for (const t of depths) {
          const p = [x / n * t, y / n * t, z / n * t, 1];
          const world = m.slice(0, 3).map((mr) => mr.reduce((acc, v, k) => acc + v * p[k], 0));
          const i = 3 * (row * size + col);
          world.forEach((w, k) => assert.ok(Math.abs(cam.origin[k] + rays.directions[i + k] * t - w) < 1e-12, `pixel ${row},${col} depth ${t} axis ${k}`));
        }
      }
    }
    // the centre pixel looks at the world origin; the background points lie on z = -0.12
    const centre = 3 * ((size * size - 1) / 2);
    const dist = Math.hypot(...cam.origin);
    for (let k = 0; k < 3; k++) assert.ok(Math.abs(rays.directions[centre + k] + cam.origin[k] / dist) < 1e-12);
    const bg = planeIntersections(rays);
    for (let i = 2; i < bg.length; i += 3) assert.ok(Math.abs(bg[i] + 0.12) < 1e-12);
  }
});

test('camera: the GPU sample points equal the float64 ones to float32 rounding', async () => {
  const generator = goldenGramGenerator(golden);
  const cameras = goldenCameras(golden);
  const { renderer, camera } = generator.config;
  await tidyAsync(async () => {
    const z = Tensor.fromData(new Float32Array(2 * 256), [2, 256]);
    const points = await noGrad(() => generator.forward(z, cameras, { imgSize: 4, intermediates: true })).intermediates!.samplePoints.toFloat32();
    const depths = linspace(camera.ray_start, camera.ray_end, renderer.num_samples);
    cameras.forEach((cam, b) => {
      const rays = worldRays(cam, 4, 4, camera.fov);
      for (let r = 0; r < 16; r++) {
        depths.forEach((t, si) => {
          for (let k = 0; k < 3; k++) {
            const want = cam.origin[k] + rays.directions[3 * r + k] * t;
            const got = points[((b * 16 + r) * depths.length + si) * 3 + k];
            assert.ok(Math.abs(got - want) < 3e-7, `element ${b} ray ${r} sample ${si}: ${got} vs ${want}`);
          }
        });
      }
    });
  });
  generator.dispose();
});

test('sampleCameras draws every yaw, then every pitch, from the generator', () => {
  const cams = sampleCameras(3, DEFAULT_POSE, new Random(11));
  const rng = new Random(11);
  const yaws = [rng.normal(Math.PI / 2, 0.3), rng.normal(Math.PI / 2, 0.3), rng.normal(Math.PI / 2, 0.3)];
  const pitches = [rng.normal(Math.PI / 2, 0.155), rng.normal(Math.PI / 2, 0.155), rng.normal(Math.PI / 2, 0.155)];
  cams.forEach((c, i) => {
    assert.is(c.yaw, yaws[i]);
    assert.is(c.pitch, pitches[i]);
    assert.equal(c.origin, cameraFromPose(pitches[i], yaws[i]).origin);
  });
});

// ---- intersection, against a float64 transcription of the reference ----

function referenceIntersections(points: Float64Array, s: Float64Array, levels: Float64Array, rays: number, samples: number): Float64Array {
  const l = levels.length;
  const out = new Float64Array(rays * l * 4);
  for (let r = 0; r < rays; r++) {
    for (let k = 0; k < l; k++) {
      const lv = levels[k];
      const crosses = (i: number) => s[r * samples + i + 1] - lv <= 0 && lv - s[r * samples + i] <= 0;
      let best = -Infinity;
      let idx = 0;
      for (let i = 0; i < samples - 1; i++) {
        const cost = ((samples - 1) * (samples - 2 - i)) / (samples - 2);
        const score = (crosses(i) ? 1 : -1) * cost;
        if (score > best) { best = score; idx = i; }
      }
      const sl = s[r * samples + idx];
      const sh = s[r * samples + idx + 1];
      const valid = crosses(idx);
      for (let c = 0; c < 3; c++) {
        const xl = points[(r * samples + idx) * 3 + c];
        const xh = points[(r * samples + idx + 1) * 3 + c];
        out[(r * l + k) * 4 + c] = valid && Math.abs(sh - sl) > 0.05 ? ((sh - lv) * xl + (lv - sl) * xh) / (sh - sl) : xh;
      }
      out[(r * l + k) * 4 + 3] = valid ? 1 : 0;
    }
  }
  return out;
}

test('intersection: points and validity against the reference, gradients against finite differences', async () => {
  const rays = 6;
  const samples = 7;
  const levels = Float64Array.from([0.6, 0.1, -0.35]);
  const shapes = [[1, rays, samples, 3], [1, rays, samples, 1]];
  const { forward, grad: gradErr } = await checkOp({
    name: 'intersectManifolds',
    shapes,
    // fields in [-1, 1] cross the levels anywhere along a ray, several times on some
    gpu: ([points, s]) => {
      const hits = intersectManifolds(points, s, Tensor.fromData(Float32Array.from(levels), [3]));
      return ops.concat([hits.points, hits.isValid], -1);
    },
    cpu: ([points, s]) => referenceIntersections(points, s, levels, rays, samples),
    h: 1e-5,
    forwardTol: 1e-5,
    gradTol: 1e-3,
  });
  console.log(`  intersection: forward ${forward.toExponential(2)}, gradient ${gradErr.toExponential(2)}`);
});

// ---- initialisation ----

test('initialisation follows the reference (section 3)', async () => {
  const config = parseConfig(manifest.gram_small.config);
  const generator = new GramGenerator(config, new Random(3));
  const state = generator.stateDict();
  const values = async (key: string) => Array.from(await state.get(key)!.toFloat32());
  const maxAbs = (v: number[]) => Math.max(...v.map(Math.abs));
  const std = (v: number[]) => Math.sqrt(v.reduce((a, x) => a + x * x, 0) / v.length);
  const h = config.representation.hidden_dim;
  const hs = config.representation.hidden_dim_sample;
  // sample network: N(0, 2/out) weights, zero biases, constant output layer
  assert.ok(Math.abs(std(await values('representation.sample_network.network.2.weight')) / Math.sqrt(2 / hs) - 1) < 0.15);
  assert.equal(await values('representation.sample_network.network.0.bias'), new Array(hs).fill(0));
  const out = await values('representation.sample_network.output_layer.weight');
  out.forEach((w) => assert.ok(Math.abs(w - 10 * Math.sqrt(Math.PI / hs)) < 1e-5));
  assert.equal(await values('representation.sample_network.output_layer.bias'), [-0]);
  // FiLM: first layer uniform(+-1/3), the others and the heads uniform(+-sqrt(6/in)/25); biases torch's default
  const first = await values('representation.rf_network.network.0.layer.weight');
  assert.ok(maxAbs(first) <= 1 / 3 && maxAbs(first) > 0.3);
  const film = await values('representation.rf_network.network.3.layer.weight');
  assert.ok(maxAbs(film) <= Math.sqrt(6 / h) / 25 && maxAbs(film) > 0.9 * Math.sqrt(6 / h) / 25);
  const color = await values('representation.rf_network.color_layer.0.layer.weight');
  assert.ok(maxAbs(color) <= Math.sqrt(6 / (h + 3)) / 25);
  const bias = await values('representation.rf_network.network.3.layer.bias');
  assert.ok(maxAbs(bias) <= 1 / Math.sqrt(h) && maxAbs(bias) > 0.5 / Math.sqrt(h));
  // mapping: kaiming normal (a = 0.2, fan_in 256), the last layer scaled by 0.25
  const kaiming = Math.sqrt(2 / 1.04) / 16;
  assert.ok(Math.abs(std(await values('representation.rf_network.mapping_network.network.2.weight')) / kaiming - 1) < 0.05);
  assert.ok(Math.abs(std(await values('representation.rf_network.mapping_network.network.6.weight')) / (0.25 * kaiming) - 1) < 0.05);
  generator.dispose();
});

// ---- memory and gradients ----

test('a forward without gradients frees every temporary; with them, both networks get gradients', async () => {
  const generator = goldenGramGenerator(golden);
  const cameras = goldenCameras(golden).slice(0, 1);
  const z = Tensor.fromData(toFloat32(golden.tensors.get('in/z')!, 'z').subarray(0, 256), [1, 256]).keep();
  const before = poolStats().inUseBytes;
  const image = tidy(() => noGrad(() => generator.forward(z, cameras, { imgSize: 8, chunkRays: 20 }).image));
  // only the image remains: 1 x 3 x 8 x 8 floats, one 768-byte buffer
  assert.is(poolStats().inUseBytes - before, 768);
  image.dispose();
  assert.is(poolStats().inUseBytes, before);

  const sampleBias = generator.representation.sample_network.output_layer.bias!;
  const filmWeight = generator.representation.rf_network.network[2].layer.weight;
  const mappingBias = generator.representation.rf_network.mapping_network.network.layers[6] as unknown as { bias: Tensor };
  await tidyAsync(async () => {
    const loss = ops.sum(generator.forward(z, cameras, { imgSize: 8, chunkRays: 20 }).image);
    const grads = grad(loss, [sampleBias, filmWeight, mappingBias.bias]);
    for (const g of grads) {
      const v = await g.toFloat32();
      assert.ok(v.every(Number.isFinite), 'finite');
      assert.ok(v.some((x) => x !== 0), 'nonzero');
    }
  });
  z.dispose();
  generator.dispose();
});

test('lockViewDependence shades every point as seen along (0, 0, -1)', async () => {
  const generator = goldenGramGenerator(golden);
  const frontal = [cameraFromPose(Math.PI / 2, Math.PI / 2)];
  await tidyAsync(async () => {
    const z = Tensor.fromData(toFloat32(golden.tensors.get('in/z')!, 'z').subarray(0, 256), [1, 256]);
    const render = (lock: boolean) => noGrad(() => generator.forward(z, frontal, { imgSize: 3, lockViewDependence: lock }).image).toFloat32();
    const [free, locked] = [await render(false), await render(true)];
    // the centre ray of the frontal camera is (0, 0, -1) itself; the others are not
    for (let c = 0; c < 3; c++) assert.ok(Math.abs(free[c * 9 + 4] - locked[c * 9 + 4]) < 1e-6, `centre pixel, channel ${c}`);
    assert.ok(free.some((v, i) => Math.abs(v - locked[i]) > 1e-5), 'off-centre pixels change');
  });
  generator.dispose();
});

test('truncation: psi 0 renders the average codes whatever z is', async () => {
  const generator = new GramGenerator(parseConfig(manifest.gram_small.config), new Random(7));
  const average = generator.computeTruncationAverage(new Random(8), 64);
  assert.equal(average.frequencies.shape, [1, 288]);
  await tidyAsync(async () => {
    const z = Tensor.fromData(new Random(9).normalArray(2 * 256), [2, 256]);
    const cameras = [cameraFromPose(1.5, 1.6), cameraFromPose(1.5, 1.6)];
    const out = noGrad(() => generator.forward(z, cameras, { imgSize: 4, truncationPsi: 0 }));
    const image = await out.image.toFloat32();
    assertClose(image.subarray(48), image.subarray(0, 48), 1e-6, 'both elements');
    // the raw codes returned are z's own, before truncation
    const freq = await out.frequencies.toFloat32();
    assert.ok(freq.subarray(0, 288).some((v, i) => v !== freq[288 + i]));
  });
  generator.dispose();
});

test('configByName knows the seven configurations and names them when asked for another', () => {
  for (const name of ['GRAM64_FFHQ', 'GRAM64_AFHQ', 'GRAMHD256_FFHQ', 'GRAMHD256_AFHQ', 'GRAMHD512_FFHQ', 'GRAMHD512_AFHQ', 'GRAMHD1024_FFHQ']) {
    assert.is(configByName(name).name, name);
  }
  assert.throws(() => configByName('GRAM128'), /unknown configuration 'GRAM128' \(valid names: GRAM64_FFHQ, GRAM64_AFHQ, GRAMHD256_FFHQ/);
});

test.run();
