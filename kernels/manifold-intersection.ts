// Ray-manifold intersection in one kernel, one invocation per (ray, level): the nearest segment of
// the sampled field that crosses the level (s_i+1 <= level <= s_i), or the last segment when none
// does, then the interpolated point (x_l (s_h - level) + x_h (level - s_l)) / (s_h - s_l) where the
// field changes by more than 0.05 along it, else the segment's far end, and the validity flag. The
// op-level reference is model/intersection.ts's intersectManifolds (scores, an argmax and four
// gathers over [R, S-1, L]); this kernel follows its arithmetic and the tests hold the two equal.
import type { Kernel } from './kernel.ts';
import { linearIndexFn } from './wgsl.ts';

export const MANIFOLD_INTERSECTION_WG = 64;

/** Bindings: params {rays, samples, levels, minStep}, points [R, S, 3], field [R, S], levels [L],
 * intersections [R, L, 3], isValid [R, L]. */
export const manifoldIntersectionKernel: Kernel = {
  key: 'manifold-intersection',
  code: /* wgsl */ `
struct Params { rays: u32, samples: u32, levels: u32, minStep: f32 };
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> points: array<f32>;
@group(0) @binding(2) var<storage, read> field: array<f32>;
@group(0) @binding(3) var<storage, read> levels: array<f32>;
@group(0) @binding(4) var<storage, read_write> hits: array<f32>;
@group(0) @binding(5) var<storage, read_write> isValid: array<f32>;
${linearIndexFn(MANIFOLD_INTERSECTION_WG)}

@compute @workgroup_size(${MANIFOLD_INTERSECTION_WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = linearIndex(gid, nwg);
  if (i >= P.rays * P.levels) { return; }
  let ray = i / P.levels;
  let level = levels[i % P.levels];
  let base = ray * P.samples;
  // the first crossing segment; the last segment when none crosses
  var first = P.samples - 2u;
  for (var k = 0u; k + 1u < P.samples; k++) {
    if (field[base + k + 1u] <= level && field[base + k] >= level) {
      first = k;
      break;
    }
  }
  let sl = field[base + first];
  let sh = field[base + first + 1u];
  let xl = vec3<f32>(points[(base + first) * 3u], points[(base + first) * 3u + 1u], points[(base + first) * 3u + 2u]);
  let xh = vec3<f32>(points[(base + first + 1u) * 3u], points[(base + first + 1u) * 3u + 1u], points[(base + first + 1u) * 3u + 2u]);
  let valid = sh <= level && sl >= level;
  let change = sh - sl;
  let steep = abs(change) > P.minStep;
  let scale = select(P.minStep, change, steep);
  var x = xh;
  if (valid && steep) { x = ((sh - level) * xl + (level - sl) * xh) / scale; }
  hits[i * 3u] = x.x;
  hits[i * 3u + 1u] = x.y;
  hits[i * 3u + 2u] = x.z;
  isValid[i] = select(0.0, 1.0, valid);
}`,
};
