// GRAM's compositing of the M points of each ray in one kernel, one invocation per ray: a stable
// sort by distance (insertion sort; M <= 32 fits registers), opacity alpha = (1 - exp(-delta sigma))
// * valid with delta 1e10 for the background point and for the farthest point (0.04 otherwise),
// the transmittance T = prod (1 - alpha + 1e-10) of the points in front, and the sums of T alpha
// times rgb and times distance. The op-level reference is model/composite.ts's
// compositeManifolds (argsort, gathers, a cumprod and sums over [R, M] tensors); this kernel
// follows its arithmetic in the same order and the tests hold the two equal.
import type { Kernel } from './kernel.ts';
import { linearIndexFn } from './wgsl.ts';

export const MANIFOLD_COMPOSITE_WG = 64;
/** Most points per ray (manifold levels + background) the kernel holds in registers. */
export const MANIFOLD_COMPOSITE_MAX_POINTS = 32;

/** Bindings: params {rays, points}, rgbSigma [R, M, 4], distances [R, M], isValid [R, M],
 * rgb [R, 3], depth [R]. The background point is index M - 1 of each ray. */
export const manifoldCompositeKernel: Kernel = {
  key: 'manifold-composite',
  code: /* wgsl */ `
struct Params { rays: u32, points: u32, _a: u32, _b: u32 };
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> rgbSigma: array<f32>;
@group(0) @binding(2) var<storage, read> distances: array<f32>;
@group(0) @binding(3) var<storage, read> isValid: array<f32>;
@group(0) @binding(4) var<storage, read_write> rgbOut: array<f32>;
@group(0) @binding(5) var<storage, read_write> depthOut: array<f32>;
${linearIndexFn(MANIFOLD_COMPOSITE_WG)}
const MAX_POINTS = ${MANIFOLD_COMPOSITE_MAX_POINTS}u;

@compute @workgroup_size(${MANIFOLD_COMPOSITE_WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let ray = linearIndex(gid, nwg);
  if (ray >= P.rays) { return; }
  let m = P.points;
  let base = ray * m;
  // stable insertion sort of the point indices by distance
  var order: array<u32, MAX_POINTS>;
  var dist: array<f32, MAX_POINTS>;
  for (var k = 0u; k < m; k++) {
    let d = distances[base + k];
    var j = k;
    while (j > 0u && dist[j - 1u] > d) {
      dist[j] = dist[j - 1u];
      order[j] = order[j - 1u];
      j--;
    }
    dist[j] = d;
    order[j] = k;
  }
  var transmittance = 1.0;
  var rgb = vec3<f32>(0.0);
  var depth = 0.0;
  for (var k = 0u; k < m; k++) {
    let p = order[k];
    let at = (base + p) * 4u;
    let far = p == m - 1u || k == m - 1u;
    let delta = select(${'0.04'}, 1e10, far);
    let alpha = (1.0 - exp(-(delta * rgbSigma[at + 3u]))) * isValid[base + p];
    let weight = alpha * transmittance;
    rgb += weight * vec3<f32>(rgbSigma[at], rgbSigma[at + 1u], rgbSigma[at + 2u]);
    depth += weight * dist[k];
    transmittance *= (1.0 - alpha) + 1e-10;
  }
  rgbOut[ray * 3u] = rgb.x;
  rgbOut[ray * 3u + 1u] = rgb.y;
  rgbOut[ray * 3u + 2u] = rgb.z;
  depthOut[ray] = depth;
}`,
};
