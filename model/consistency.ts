// 3D consistency of two renders of one scene, measured by reprojection (float64 on the CPU; images
// are small). Every pixel p of view B with rendered depth d is lifted to the point X = o_B + d dir_B(p)
// (the generators' depth is the composited distance along the unit ray directions of worldRays), X
// is projected into view A with the same pinhole camera (the inverse of cameraDirections and
// cameraRotation), and A's image is sampled there bilinearly. p counts as visible when X lands inside
// A's frame, in front of it, and A's own depth there (bilinear) agrees with |X - o_A| to a relative
// tolerance; the photometric error is the mean absolute difference over visible pixels and channels.
import { cameraRotation, worldRays, type Camera } from './camera.ts';

/** One rendered view: its camera, the image [C, H, W] (planar) and the depth [H, W] (distance from the
 * camera's origin along each pixel's unit ray). */
export interface RenderedView {
  camera: Camera;
  image: Float32Array;
  depth: Float32Array;
  height: number;
  width: number;
}

export interface ReprojectionOptions {
  /** Full field of view of both cameras, degrees (the configuration's camera.fov). */
  fov: number;
  /** Relative depth tolerance of the visibility test: |d_A - |X - o_A|| <= tolerance |X - o_A|. */
  depthTolerance: number;
}

export interface ReprojectionError {
  /** Mean |B(p) - A(proj p)| over visible pixels and channels, in the images' units; NaN when none is visible. */
  error: number;
  /** Visible pixels of B over all of B's pixels. */
  visibleFraction: number;
  visible: number;
  pixels: number;
}

/** Where a world point falls in a camera's image: fractional (row, col) with pixel centres at
 * integers (cameraDirections' grid: column 0 at x = -1, row 0 at y = +1), and its distance from the
 * origin; null behind the camera. */
export function projectPoint(point: readonly number[], camera: Camera, rotation: Float64Array, height: number, width: number, fov: number): { row: number; col: number; distance: number } | null {
  const dx = point[0] - camera.origin[0];
  const dy = point[1] - camera.origin[1];
  const dz = point[2] - camera.origin[2];
  // camera space = R^T (X - o); R is row-major with the camera axes as columns
  const cx = rotation[0] * dx + rotation[3] * dy + rotation[6] * dz;
  const cy = rotation[1] * dx + rotation[4] * dy + rotation[7] * dz;
  const cz = rotation[2] * dx + rotation[5] * dy + rotation[8] * dz;
  if (!(cz < 0)) return null;
  // the pixel's unnormalised direction is (x, y, z0) with z0 = -1/tan(fov/2)
  const z0 = -1 / Math.tan((fov * Math.PI) / 360);
  const x = (cx * z0) / cz;
  const y = (cy * z0) / cz;
  return { col: ((x + 1) / 2) * (width - 1), row: ((1 - y) / 2) * (height - 1), distance: Math.hypot(dx, dy, dz) };
}

/** Whether a projected (row, col) lies in the frame, allowing a rounding error at the border (the
 * border pixels' own rays must land inside). */
export function insideFrame(at: { row: number; col: number }, height: number, width: number): boolean {
  const eps = 1e-6;
  return at.row >= -eps && at.row <= height - 1 + eps && at.col >= -eps && at.col <= width - 1 + eps;
}

/** Bilinear sample of plane `offset` ([H, W] at that offset) at fractional (row, col) inside the grid. */
function bilinear(values: Float32Array, offset: number, height: number, width: number, row: number, col: number): number {
  const r0 = Math.min(Math.max(Math.floor(row), 0), height - 1);
  const c0 = Math.min(Math.max(Math.floor(col), 0), width - 1);
  const r1 = Math.min(r0 + 1, height - 1);
  const c1 = Math.min(c0 + 1, width - 1);
  const fr = Math.min(Math.max(row - r0, 0), 1);
  const fc = Math.min(Math.max(col - c0, 0), 1);
  const at = (r: number, c: number) => values[offset + r * width + c];
  return (1 - fr) * ((1 - fc) * at(r0, c0) + fc * at(r0, c1)) + fr * ((1 - fc) * at(r1, c0) + fc * at(r1, c1));
}

/** View B reprojected into view A (both the same size and channel count): the photometric error of B's
 * visible pixels against A's image. */
export function reprojectionError(a: RenderedView, b: RenderedView, options: ReprojectionOptions): ReprojectionError {
  const { height: h, width: w } = b;
  if (a.height !== h || a.width !== w) throw new Error(`reprojection: views of ${a.height}x${a.width} and ${h}x${w}; they must be the same size`);
  const plane = h * w;
  const channels = b.image.length / plane;
  if (!Number.isInteger(channels) || a.image.length !== b.image.length) throw new Error(`reprojection: images of ${a.image.length} and ${b.image.length} values for ${h}x${w} pixels`);
  if (a.depth.length !== plane || b.depth.length !== plane) throw new Error(`reprojection: depths of ${a.depth.length} and ${b.depth.length} values for ${h}x${w} pixels`);
  const rays = worldRays(b.camera, h, w, options.fov);
  const rotationA = cameraRotation(a.camera.origin);
  let sum = 0;
  let visible = 0;
  const point = [0, 0, 0];
  for (let p = 0; p < plane; p++) {
    const d = b.depth[p];
    for (let k = 0; k < 3; k++) point[k] = rays.origin[k] + d * rays.directions[3 * p + k];
    const hit = projectPoint(point, a.camera, rotationA, h, w, options.fov);
    if (!hit || !insideFrame(hit, h, w)) continue;
    const depthA = bilinear(a.depth, 0, h, w, hit.row, hit.col);
    if (!(Math.abs(depthA - hit.distance) <= options.depthTolerance * hit.distance)) continue;
    visible++;
    let diff = 0;
    for (let c = 0; c < channels; c++) diff += Math.abs(b.image[c * plane + p] - bilinear(a.image, c * plane, h, w, hit.row, hit.col));
    sum += diff / channels;
  }
  return { error: visible ? sum / visible : NaN, visibleFraction: visible / plane, visible, pixels: plane };
}

/** Bilinear upscaling of a planar image [C, h, w] to [C, H, W] with corner pixels aligned
 * (align_corners=True: the pixel grids of cameraDirections at both sizes span the same rays). */
export function upsampleBilinear(image: Float32Array, height: number, width: number, outHeight: number, outWidth: number): Float32Array {
  const channels = image.length / (height * width);
  const out = new Float32Array(channels * outHeight * outWidth);
  const scale = (n: number, m: number) => (m === 1 ? 0 : (n - 1) / (m - 1));
  const sy = scale(height, outHeight);
  const sx = scale(width, outWidth);
  for (let c = 0; c < channels; c++) {
    for (let y = 0; y < outHeight; y++) {
      for (let x = 0; x < outWidth; x++) out[(c * outHeight + y) * outWidth + x] = bilinear(image, c * height * width, height, width, y * sy, x * sx);
    }
  }
  return out;
}
