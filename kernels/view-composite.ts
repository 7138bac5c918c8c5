// GRAM-HD's high-res rendering in one kernel, one invocation per output pixel: the low-res geometry
// upsampled bilinearly (align_corners=True, as grid_sample on the upsampling grid), the texture
// lookups (bilinear, zeros padding for the manifolds, reflection padding and bg_invmap for the
// background plane), the stable sort by distance and front-to-back alpha compositing. The op-level
// reference is GramHDGenerator.renderHighRes (model/gramhd.ts); this kernel follows its arithmetic
// step by step (same formulas, same order of sums) and the tests hold the two equal. Nothing but
// the pixel's rgb and depth goes to memory, so a view costs the texture reads rather than the
// [H*H, L, ...] intermediates of the composed path.
import type { Kernel } from './kernel.ts';
import { linearIndexFn } from './wgsl.ts';

export const VIEW_COMPOSITE_WG = 64;
/** Most points (manifold levels + background) per ray the kernel holds in registers. */
export const VIEW_COMPOSITE_MAX_POINTS = 32;
/** Most buffers the manifold textures may come in (a 1024^2 texture set exceeds one storage binding
 * on many adapters): pieces of `levelsPerPiece` levels along dim 0, the last possibly shorter. Three
 * keep the kernel at WebGPU's default of 8 storage buffers per stage. */
export const VIEW_COMPOSITE_MAX_PIECES = 3;

export interface ViewCompositeParams {
  /** Manifold levels L. */
  levels: number;
  /** Low-res (geometry) and high-res (texture, output) sizes. */
  lowSize: number;
  size: number;
  /** The camera origin. */
  origin: readonly number[];
  /** 100 / fov: manifold x, y -> texture grid coordinates. */
  textureScale: number;
  /** Levels in each texture piece but the last. */
  levelsPerPiece: number;
}

export function viewCompositeUniforms(p: ViewCompositeParams): Uint8Array {
  const buffer = new ArrayBuffer(32);
  new Uint32Array(buffer, 0, 4).set([p.levels, p.lowSize, p.size, p.levelsPerPiece]);
  new Float32Array(buffer, 16, 4).set([p.origin[0], p.origin[1], p.origin[2], p.textureScale]);
  return new Uint8Array(buffer);
}

/** Bindings: params, geometry [4L + 3, HL, HL], background [3, H, H], grid [H] (the upsampling
 * grid's coordinate per output index), rgb [H*H, 3], depth [H*H], then the manifold textures
 * [L, 4, H, H] in VIEW_COMPOSITE_MAX_PIECES pieces along dim 0 (unused ones bound to any buffer). */
export const viewCompositeKernel: Kernel = {
  key: 'view-composite',
  code: () => /* wgsl */ `
struct Params { levels: u32, low: u32, size: u32, perPiece: u32, origin: vec3<f32>, textureScale: f32 };
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> geometry: array<f32>;
@group(0) @binding(2) var<storage, read> background: array<f32>;
@group(0) @binding(3) var<storage, read> grid: array<f32>;
@group(0) @binding(4) var<storage, read_write> rgbOut: array<f32>;
@group(0) @binding(5) var<storage, read_write> depthOut: array<f32>;
${Array.from({ length: VIEW_COMPOSITE_MAX_PIECES }, (_, i) => `@group(0) @binding(${6 + i}) var<storage, read> texture${i}: array<f32>;`).join('\n')}
fn texel(piece: u32, at: i32) -> f32 {
  switch piece {
${Array.from({ length: VIEW_COMPOSITE_MAX_PIECES }, (_, i) => `    ${i === VIEW_COMPOSITE_MAX_PIECES - 1 ? 'default' : `case ${i}u`}: { return texture${i}[at]; }`).join('\n')}
  }
}
${linearIndexFn(VIEW_COMPOSITE_WG)}
const MAX_POINTS = ${VIEW_COMPOSITE_MAX_POINTS}u;

// a bilinear footprint as grid_sample builds it: base texel and the corner weights wy * wx
struct Footprint { x0: f32, y0: f32, w: vec4<f32> };
fn footprint(px: f32, py: f32) -> Footprint {
  let x0 = floor(px);
  let y0 = floor(py);
  let fx = px - x0;
  let fy = py - y0;
  return Footprint(x0, y0, vec4<f32>((1.0 - fy) * (1.0 - fx), (1.0 - fy) * fx, fy * (1.0 - fx), fy * fx));
}
// flat index of corner k of a footprint in plane 'plane' of an image of h x w, or -1 outside
fn corner(f: Footprint, k: u32, plane: u32, h: u32, w: u32) -> i32 {
  let cx = f.x0 + f32(k & 1u);
  let cy = f.y0 + f32(k >> 1u);
  if (cx >= 0.0 && cx <= f32(w) - 1.0 && cy >= 0.0 && cy <= f32(h) - 1.0) {
    return i32((plane * h + u32(cy)) * w + u32(cx));
  }
  return -1;
}
fn upsampled(f: Footprint, c: u32) -> f32 {
  var acc = 0.0;
  for (var k = 0u; k < 4u; k++) {
    let at = corner(f, k, c, P.low, P.low);
    if (at >= 0) { acc += f.w[k] * geometry[at]; }
  }
  return acc;
}
// channel c of level m's texture
fn textured(f: Footprint, m: u32, c: u32) -> f32 {
  let piece = m / P.perPiece;
  let plane = 4u * (m % P.perPiece) + c;
  var acc = 0.0;
  for (var k = 0u; k < 4u; k++) {
    let at = corner(f, k, plane, P.size, P.size);
    if (at >= 0) { acc += f.w[k] * texel(piece, at); }
  }
  return acc;
}
fn backgroundTexel(f: Footprint, plane: u32) -> f32 {
  var acc = 0.0;
  for (var k = 0u; k < 4u; k++) {
    let at = corner(f, k, plane, P.size, P.size);
    if (at >= 0) { acc += f.w[k] * background[at]; }
  }
  return acc;
}
// grid value -> source coordinate, align_corners=False, zeros padding
fn unnormalize(a: f32, p0: f32) -> f32 { return ((a + 1.0) * p0 - 1.0) * 0.5; }
// the same with reflection padding (about -0.5 and p0 - 0.5), clipped to [0, p0 - 1]
fn reflected(a: f32, p0: f32) -> f32 {
  let distance = abs((a + 1.0) * p0 * 0.5);
  let flips = floor(distance / p0);
  let extra = distance - flips * p0;
  let even = fract(flips * 0.5) == 0.0;
  return clamp(select(p0 - extra, extra, even) - 0.5, 0.0, p0 - 1.0);
}
// bg_invmap: plane coordinate -> background grid coordinate
fn bgInvMap(a: f32) -> f32 {
  return select(select(a / 0.24, atan((a - 0.12) / 0.24) + 0.5, a > 0.12), atan((a + 0.12) / 0.24) - 0.5, a < -0.12);
}

@compute @workgroup_size(${VIEW_COMPOSITE_WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let pixel = linearIndex(gid, nwg);
  if (pixel >= P.size * P.size) { return; }
  let l = P.levels;
  let low = f32(P.low);
  let size = f32(P.size);
  let up = footprint(unnormalize(grid[pixel % P.size], low), unnormalize(grid[pixel / P.size], low));

  var distance: array<f32, MAX_POINTS>;
  var rgba: array<vec4<f32>, MAX_POINTS>;
  var valid: array<f32, MAX_POINTS>;
  for (var m = 0u; m <= l; m++) {
    var point: vec3<f32>;
    if (m < l) {
      point = vec3<f32>(upsampled(up, 3u * m), upsampled(up, 3u * m + 1u), upsampled(up, 3u * m + 2u));
      valid[m] = select(0.0, 1.0, upsampled(up, 3u * l + m) > 0.99);
      let look = footprint(unnormalize(point.x * P.textureScale, size), unnormalize(point.y * P.textureScale, size));
      rgba[m] = vec4<f32>(textured(look, m, 0u), textured(look, m, 1u), textured(look, m, 2u), textured(look, m, 3u));
    } else {
      point = vec3<f32>(upsampled(up, 4u * l), upsampled(up, 4u * l + 1u), upsampled(up, 4u * l + 2u));
      valid[m] = 1.0;
      let look = footprint(reflected(bgInvMap(point.x), size), reflected(bgInvMap(point.y), size));
      rgba[m] = vec4<f32>(backgroundTexel(look, 0u), backgroundTexel(look, 1u), backgroundTexel(look, 2u), 1.0);
    }
    let d = point - P.origin;
    distance[m] = sqrt(d.x * d.x + d.y * d.y + d.z * d.z);
  }

  // stable insertion sort of the point indices by distance
  var order: array<u32, MAX_POINTS>;
  for (var m = 0u; m <= l; m++) {
    var k = m;
    while (k > 0u && distance[order[k - 1u]] > distance[m]) {
      order[k] = order[k - 1u];
      k--;
    }
    order[k] = m;
  }

  var transmittance = 1.0;
  var rgb = vec3<f32>(0.0);
  var depth = 0.0;
  for (var k = 0u; k <= l; k++) {
    let m = order[k];
    let alpha = rgba[m].w * valid[m];
    let weight = alpha * transmittance;
    rgb += weight * rgba[m].xyz;
    depth += weight * distance[m];
    transmittance *= (1.0 - alpha) + 1e-10;
  }
  rgbOut[3u * pixel] = rgb.x;
  rgbOut[3u * pixel + 1u] = rgb.y;
  rgbOut[3u * pixel + 2u] = rgb.z;
  depthOut[pixel] = depth;
}`,
};
