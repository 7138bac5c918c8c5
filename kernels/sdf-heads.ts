// A signed-distance-field ray marcher for procedural heads (synthetic training data): one invocation
// per (head, pixel); each head is HEAD_VEC4S vec4 of parameters (shape, colours, light, camera) laid
// out by model/synth/heads.ts. The head is modelled in "head units" (cranium radius ~0.9, face
// towards +z, up +y) and scaled into world space; the camera convention is model/camera.ts'
// (x in linspace(-1, 1, W), y in linspace(1, -1, H), z = -1/tan(fov/2), rotated by cam2world).
import type { Kernel } from './kernel.ts';
import { linearIndexFn } from './wgsl.ts';

export const SDF_HEADS_WG = 64;

/** vec4s per head in the parameter buffer (the layout is written out in model/synth/heads.ts). */
export const HEAD_VEC4S = 18;

/** Radius of the world-space sphere around the origin that bounds every head (marching starts
 * where the ray enters it). */
export const HEAD_BOUND_RADIUS = 0.16;

export const sdfHeadsKernel: Kernel = {
  key: 'sdf-heads',
  code: /* wgsl */ `
struct Params { total: u32, width: u32, height: u32, supersample: u32,
  focal: f32, bound: f32, wantDepth: u32, pad: u32 };
@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> heads: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> rgba: array<u32>;
@group(0) @binding(3) var<storage, read_write> depth: array<f32>;
${linearIndexFn(SDF_HEADS_WG)}

// this invocation's head, copied out of the storage buffer once
var<private> scale: f32;
var<private> cranium: vec3<f32>;
var<private> jaw: vec3<f32>;
var<private> jawY: f32;
var<private> noseLength: f32;
var<private> noseWidth: f32;
var<private> noseY: f32;
var<private> eyeSpacing: f32;
var<private> eyeSize: f32;
var<private> eyeY: f32;
var<private> earSize: f32;
var<private> hairVolume: f32;
var<private> hairline: f32;
var<private> hairLength: f32;
var<private> neckRadius: f32;
var<private> mouthWidth: f32;
var<private> browHeight: f32;
var<private> cheek: f32;
var<private> hasLongHair: f32;

fn smin(a: f32, b: f32, k: f32) -> f32 {
  let h = max(k - abs(a - b), 0.0) / k;
  return min(a, b) - h * h * k * 0.25;
}
fn smax(a: f32, b: f32, k: f32) -> f32 { return -smin(-a, -b, k); }

// a bound (not exact) distance to an ellipsoid of radii r at the origin
fn ellipsoid(p: vec3<f32>, r: vec3<f32>) -> f32 {
  let k0 = length(p / r);
  let k1 = length(p / (r * r));
  return k0 * (k0 - 1.0) / max(k1, 1e-6);
}
fn capsule(p: vec3<f32>, a: vec3<f32>, b: vec3<f32>, r: f32) -> f32 {
  let pa = p - a;
  let ba = b - a;
  let h = clamp(dot(pa, ba) / dot(ba, ba), 0.0, 1.0);
  return length(pa - ba * h) - r;
}

fn eyeCentre() -> vec3<f32> { return vec3<f32>(eyeSpacing, eyeY, 0.63); }

fn upperLip(q: vec3<f32>) -> f32 {
  let y = jawY - 0.15;
  return ellipsoid(q - vec3<f32>(0.0, y, 0.7), vec3<f32>(mouthWidth, 0.045, 0.07));
}
fn lowerLip(q: vec3<f32>) -> f32 {
  let y = jawY - 0.24;
  return ellipsoid(q - vec3<f32>(0.0, y, 0.68), vec3<f32>(mouthWidth * 0.85, 0.05, 0.07));
}

// distances in head units to the parts: x skin, y hair, z eyes, w clothes
fn parts(q: vec3<f32>) -> vec4<f32> {
  let m = vec3<f32>(abs(q.x), q.y, q.z);  // mirrored for the paired parts
  var skin = ellipsoid(q - vec3<f32>(0.0, 0.12, -0.08), cranium);
  skin = smin(skin, ellipsoid(q - vec3<f32>(0.0, jawY, 0.1), jaw), 0.3);
  // cheekbones
  skin = smin(skin, ellipsoid(m - vec3<f32>(0.36, eyeY - 0.2, 0.5), vec3<f32>(0.2, 0.14, 0.18) * cheek), 0.2);
  // eye sockets under a brow ridge
  let socket = length(m - eyeCentre() - vec3<f32>(0.0, -0.02, 0.1)) - eyeSize * 1.45;
  skin = smax(skin, -socket, 0.08);
  // upper eyelids: a skin shell over the top of each eyeball
  let lid = max(abs(length(m - eyeCentre()) - eyeSize * 1.05) - 0.012, eyeY + eyeSize * 0.25 - m.y);
  skin = smin(skin, lid, 0.02);
  skin = smin(skin, capsule(m, vec3<f32>(0.1, eyeY + browHeight, 0.74), vec3<f32>(eyeSpacing + 0.14, eyeY + browHeight - 0.02, 0.62), 0.045), 0.06);
  // nose: a bridge from between the eyes to the tip, and the nostril wings
  let tip = vec3<f32>(0.0, noseY, 0.8 + noseLength);
  skin = smin(skin, capsule(q, vec3<f32>(0.0, eyeY - 0.02, 0.74), tip, noseWidth * 0.7), 0.1);
  skin = smin(skin, ellipsoid(m - vec3<f32>(noseWidth * 0.7, noseY - 0.03, 0.76 + noseLength * 0.6), vec3<f32>(noseWidth, noseWidth * 0.8, noseWidth * 0.9)), 0.06);
  // lips and the mouth slit between them
  let mouthY = jawY - 0.17;
  skin = smin(skin, upperLip(q), 0.08);
  skin = smin(skin, lowerLip(q), 0.08);
  skin = smax(skin, -capsule(q, vec3<f32>(-mouthWidth, mouthY - 0.025, 0.75), vec3<f32>(mouthWidth, mouthY - 0.025, 0.75), 0.01), 0.02);
  // ears
  skin = smin(skin, ellipsoid(m - vec3<f32>(cranium.x * 0.97, eyeY - 0.05, -0.1), vec3<f32>(0.09, 0.24, 0.15) * earSize), 0.05);
  // neck
  skin = smin(skin, capsule(q, vec3<f32>(0.0, -0.3, -0.15), vec3<f32>(0.0, -1.6, -0.2), neckRadius), 0.25);

  // hair: a cap around the cranium cut by a hairline plane that falls towards the back
  let capR = cranium * (1.0 + hairVolume);
  var hair = ellipsoid(q - vec3<f32>(0.0, 0.12 + hairVolume * 0.5, -0.1), capR);
  let slope = 0.45;
  let line = (hairline + slope * (q.z - 0.6) - q.y) / sqrt(1.0 + slope * slope);
  hair = smax(hair, line, 0.06);
  if (hasLongHair > 0.5) {
    var long = ellipsoid(q - vec3<f32>(0.0, 0.05 - 0.5 * hairLength, -0.3), vec3<f32>(cranium.x * 1.15, 0.95 + 0.5 * hairLength, 0.72));
    long = smax(long, q.z - 0.25, 0.1);
    hair = smin(hair, long, 0.1);
  }
  let eyes = length(m - eyeCentre()) - eyeSize;
  let clothes = ellipsoid(q - vec3<f32>(0.0, -1.75, -0.2), vec3<f32>(1.6, 0.6, 0.75));
  return vec4<f32>(skin, hair, eyes, clothes);
}

fn scene(q: vec3<f32>) -> f32 {
  let d = parts(q);
  return min(min(d.x, d.y), min(d.z, d.w));
}

fn normalAt(q: vec3<f32>) -> vec3<f32> {
  let e = vec2<f32>(1.0, -1.0) * 0.004;
  return normalize(e.xyy * scene(q + e.xyy) + e.yyx * scene(q + e.yyx) + e.yxy * scene(q + e.yxy) + e.xxx * scene(q + e.xxx));
}

fn occlusion(q: vec3<f32>, n: vec3<f32>) -> f32 {
  var o = 0.0;
  var w = 1.0;
  for (var i = 1; i <= 4; i++) {
    let h = 0.05 * f32(i);
    o += (h - scene(q + n * h)) * w;
    w *= 0.6;
  }
  return clamp(1.0 - 2.0 * o, 0.2, 1.0);
}

// distance along the (unit, world-space) ray to the head, or -1 on a miss
fn march(origin: vec3<f32>, dir: vec3<f32>) -> f32 {
  let b = dot(origin, dir);
  let c = dot(origin, origin) - P.bound * P.bound;
  let disc = b * b - c;
  if (disc <= 0.0) { return -1.0; }
  let root = sqrt(disc);
  var t = -b - root;
  let tEnd = -b + root;
  for (var i = 0; i < 96; i++) {
    let d = scene((origin + dir * t) / scale) * scale;
    if (d < 4e-4) { return t; }
    t += d * 0.9;
    if (t > tEnd) { return -1.0; }
  }
  return -1.0;
}

fn shade(h: u32, origin: vec3<f32>, dir: vec3<f32>, t: f32, v: f32) -> vec3<f32> {
  let base = h * ${HEAD_VEC4S}u;
  if (t < 0.0) {
    return mix(heads[base + 10u].xyz, heads[base + 11u].xyz, v);
  }
  let q = (origin + dir * t) / scale;
  let d = parts(q);
  let n = normalAt(q);
  var albedo = heads[base + 5u].xyz;  // skin
  let nearest = min(min(d.x, d.y), min(d.z, d.w));
  if (d.y <= nearest) {
    // hair with a few strands of variation
    albedo = heads[base + 6u].xyz * (0.9 + 0.06 * sin(q.x * 90.0 + q.y * 31.0) + 0.04 * sin(q.x * 37.0 - q.z * 71.0));
  } else if (d.z <= nearest) {
    let m = vec3<f32>(abs(q.x), q.y, q.z);
    let a = normalize(m - eyeCentre()).z;
    albedo = select(vec3<f32>(0.92, 0.9, 0.88), heads[base + 7u].xyz, a > 0.72);
    if (a > 0.92) { albedo = vec3<f32>(0.03, 0.03, 0.03); }
  } else if (d.w <= nearest) {
    albedo = heads[base + 9u].xyz;
  } else {
    // lips: blended in by the distance to the two lip capsules
    let lipDist = min(upperLip(q), lowerLip(q));
    albedo = mix(albedo, heads[base + 8u].xyz, 0.75 * (1.0 - smoothstep(0.0, 0.04, lipDist)));
  }
  let light = heads[base + 12u];
  let ambient = heads[base + 13u].x;
  let lambert = max(dot(n, normalize(light.xyz)), 0.0) * light.w;
  let sky = ambient * (0.75 + 0.25 * n.y) * occlusion(q, n);
  return albedo * (sky + lambert);
}

@compute @workgroup_size(${SDF_HEADS_WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = linearIndex(gid, nwg);
  if (i >= P.total) { return; }
  let pixels = P.width * P.height;
  let h = i / pixels;
  let pixel = i % pixels;
  let row = pixel / P.width;
  let col = pixel % P.width;
  let base = h * ${HEAD_VEC4S}u;
  let v0 = heads[base];
  scale = v0.x;
  cranium = v0.yzw;
  let v1 = heads[base + 1u];
  jaw = v1.xyz;
  jawY = v1.w;
  let v2 = heads[base + 2u];
  noseLength = v2.x; noseWidth = v2.y; noseY = v2.z; eyeSpacing = v2.w;
  let v3 = heads[base + 3u];
  eyeSize = v3.x; eyeY = v3.y; earSize = v3.z; hairVolume = v3.w;
  let v4 = heads[base + 4u];
  hairline = v4.x; hairLength = v4.y; neckRadius = v4.z; mouthWidth = v4.w;
  let v13 = heads[base + 13u];
  browHeight = v13.y; cheek = v13.z; hasLongHair = v13.w;
  let origin = heads[base + 14u].xyz;
  let r0 = heads[base + 15u].xyz;
  let r1 = heads[base + 16u].xyz;
  let r2 = heads[base + 17u].xyz;

  // pixel spacing of linspace(-1, 1, n) is 2 / (n - 1)
  let stepX = 2.0 / f32(max(P.width, 2u) - 1u);
  let stepY = 2.0 / f32(max(P.height, 2u) - 1u);
  let cx = select(-1.0 + f32(col) * stepX, -1.0, P.width == 1u);
  let cy = select(1.0 - f32(row) * stepY, 1.0, P.height == 1u);
  let ss = max(P.supersample, 1u);
  var colour = vec3<f32>(0.0);
  var centreT = -2.0;
  for (var sy = 0u; sy < ss; sy++) {
    for (var sx = 0u; sx < ss; sx++) {
      let ox = ((f32(sx) + 0.5) / f32(ss) - 0.5) * stepX;
      let oy = ((f32(sy) + 0.5) / f32(ss) - 0.5) * stepY;
      let c = normalize(vec3<f32>(cx + ox, cy - oy, -P.focal));
      let dir = vec3<f32>(dot(r0, c), dot(r1, c), dot(r2, c));
      let t = march(origin, dir);
      if (ss == 1u) { centreT = t; }
      colour += shade(h, origin, dir, t, (1.0 - (cy - oy)) * 0.5);
    }
  }
  colour = colour / f32(ss * ss);
  rgba[i] = pack4x8unorm(vec4<f32>(sqrt(clamp(colour, vec3<f32>(0.0), vec3<f32>(1.0))), 1.0));
  if (P.wantDepth != 0u) {
    if (centreT == -2.0) {
      let c = normalize(vec3<f32>(cx, cy, -P.focal));
      centreT = march(origin, vec3<f32>(dot(r0, c), dot(r1, c), dot(r2, c)));
    }
    depth[i] = max(centreT, 0.0);
  }
}`,
};

/** The kernel's uniforms: image count x pixels, the size, supersampling, focal = 1/tan(fov/2). */
export function sdfHeadsUniforms(count: number, width: number, height: number, supersample: number, focal: number, wantDepth: boolean): Uint32Array {
  const u = new Uint32Array(8);
  const f = new Float32Array(u.buffer);
  u[0] = count * width * height;
  u[1] = width;
  u[2] = height;
  u[3] = supersample;
  f[4] = focal;
  f[5] = HEAD_BOUND_RADIUS;
  u[6] = wantDepth ? 1 : 0;
  return u;
}
