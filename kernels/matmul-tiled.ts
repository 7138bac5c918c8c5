// Matrix product for GPUs (and CPU adapters without fixed-size subgroups): the classic
// shared-memory tiling. A 16 x 16 workgroup computes a 64 x 64 tile of C, 4 x 4 per invocation in
// registers; each 16-deep slice of op(A) and op(B) is staged in workgroup memory once and read by
// 16 invocations. Global loads are scalar through the strides, with the thread-to-element map
// following the operand's contiguous axis (hence the transpose flags in the key) so neighbouring
// invocations read neighbouring addresses.
import type { Kernel } from './kernel.ts';
import { MATMUL_PARAMS } from './matmul.ts';

const TILE = 64;
const DEPTH = 16;
const WG = 16;
const PER = TILE / WG; // rows and columns per invocation

export function tiledMatmulGroups(m: number, n: number, batch: number): [number, number, number] {
  return [Math.ceil(n / TILE), Math.ceil(m / TILE), batch];
}

const cache = new Map<string, Kernel>();

/** ta: op(A) is contiguous along m (A transposed), tb: op(B) is contiguous along k. */
export function tiledMatmulKernel(ta: boolean, tb: boolean): Kernel {
  const key = `matmul:tiled64:ta${+ta}:tb${+tb}`;
  let kernel = cache.get(key);
  if (!kernel) {
    kernel = { key, code: () => tiledMatmulSource(ta, tb) };
    cache.set(key, kernel);
  }
  return kernel;
}

function tiledMatmulSource(ta: boolean, tb: boolean): string {
  // element e (0 .. TILE * DEPTH) of a slice -> (depth, index along m or n); the contiguous axis
  // varies fastest with e
  const slot = (alongK: boolean) => alongK
    ? `let d = e % ${DEPTH}u; let x = e / ${DEPTH}u;`
    : `let d = e / ${TILE}u; let x = e % ${TILE}u;`;
  return /* wgsl */ `
${MATMUL_PARAMS}
@group(0) @binding(1) var<storage, read> A: array<f32>;
@group(0) @binding(2) var<storage, read> B: array<f32>;
@group(0) @binding(3) var<storage, read_write> C: array<f32>;
// [depth][row / ${PER}] and [depth][column / ${PER}]: one vec4 is what an invocation reads per step
var<workgroup> As: array<vec4<f32>, ${DEPTH * WG}>;
var<workgroup> Bs: array<vec4<f32>, ${DEPTH * WG}>;

@compute @workgroup_size(${WG}, ${WG})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let t = lid.y * ${WG}u + lid.x;
  let row0 = wg.y * ${TILE}u;
  let col0 = wg.x * ${TILE}u;
  let aBase = wg.z * P.aBatch;
  let bBase = wg.z * P.bBatch;
  var acc: array<vec4<f32>, ${PER}>;
  for (var k0 = 0u; k0 < P.k; k0 += ${DEPTH}u) {
    for (var s = 0u; s < ${(TILE * DEPTH) / (WG * WG)}u; s++) {
      let e = t + s * ${WG * WG}u;
      {
        ${slot(!ta)}
        let r = row0 + x;
        let kk = k0 + d;
        var v = 0.0;
        if (r < P.m && kk < P.k) { v = A[aBase + r * P.am + kk * P.ak]; }
        As[d * ${WG}u + x / ${PER}u][x % ${PER}u] = v;
      }
      {
        ${slot(tb)}
        let c = col0 + x;
        let kk = k0 + d;
        var v = 0.0;
        if (c < P.n && kk < P.k) { v = B[bBase + kk * P.bk + c * P.bn]; }
        Bs[d * ${WG}u + x / ${PER}u][x % ${PER}u] = v;
      }
    }
    workgroupBarrier();
    for (var d = 0u; d < ${DEPTH}u; d++) {
      let a = As[d * ${WG}u + lid.y];
      let b = Bs[d * ${WG}u + lid.x];
      for (var i = 0u; i < ${PER}u; i++) { acc[i] += a[i] * b; }
    }
    workgroupBarrier();
  }
  let cBase = wg.z * P.m * P.n;
  for (var i = 0u; i < ${PER}u; i++) {
    let r = row0 + lid.y * ${PER}u + i;
    if (r >= P.m) { break; }
    for (var j = 0u; j < ${PER}u; j++) {
      let c = col0 + lid.x * ${PER}u + j;
      if (c < P.n) { C[cBase + r * P.n + c] = acc[i][j]; }
    }
  }
}`;
}
