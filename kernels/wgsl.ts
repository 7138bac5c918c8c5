// WGSL snippets shared by the kernels: the linear invocation index of a folded 2-D dispatch, index
// decomposition from uniform shape vectors, and a portable sine/cosine.

/** Max tensor rank a kernel's uniforms describe (shapes and strides packed as 2 vec4<u32>). */
export const MAX_RANK = 8;

/** Declares `fn linearIndex(gid, nwg) -> u32` for workgroups of `wg` threads folded over x and y. */
export function linearIndexFn(wg: number): string {
  return /* wgsl */ `
fn linearIndex(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
  return gid.x + gid.y * nwg.x * ${wg}u;
}`;
}

/** Reads element d of a shape/stride vector packed as array<vec4<u32>, 2>. */
export const VEC_AT = /* wgsl */ `
fn at8(v: array<vec4<u32>, 2>, d: u32) -> u32 {
  return v[d / 4u][d % 4u];
}`;

/** sin and cos with explicit Cody-Waite range reduction by pi/2 and Cephes' single-precision
 * polynomials on [-pi/4, pi/4], so that every adapter (lavapipe, SwiftShader, NVIDIA) computes the
 * same values to float32 accuracy; built-in sin() differs by up to 2e-4 between implementations and
 * the radiance network amplifies that through eight layers. */
export const PORTABLE_SINCOS = /* wgsl */ `
fn sincos_poly(r: f32, q: f32) -> vec2<f32> {
  let z = r * r;
  let s = r + r * z * (-1.6666654611e-1 + z * (8.3321608736e-3 + z * (-1.9515295891e-4)));
  let c = 1.0 - 0.5 * z + z * z * (4.166664568298827e-2 + z * (-1.388731625493765e-3 + z * 2.443315711809948e-5));
  // the quadrant q mod 4 picks (s, c), (c, -s), (-s, -c) or (-c, s); in float arithmetic and selects,
  // without branches or a float-to-int conversion, both of which CPU adapters run lane by lane
  let m = q - 4.0 * floor(q * 0.25);
  let odd = m == 1.0 || m == 3.0;
  let sv = select(s, c, odd);
  let cv = select(c, s, odd);
  return vec2<f32>(select(sv, -sv, m >= 2.0), select(cv, -cv, m == 1.0 || m == 2.0));
}
fn sincos_reduce(x: f32) -> vec2<f32> {
  let q = round(x * 0.63661977236758134);
  var r = x - q * 1.5703125;
  r = r - q * 4.837512969970703125e-4;
  r = r - q * 7.549789954891882e-8;
  return sincos_poly(r, q);
}
fn psin(x: f32) -> f32 { return sincos_reduce(x).x; }
fn pcos(x: f32) -> f32 { return sincos_reduce(x).y; }`;
