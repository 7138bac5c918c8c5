// Cameras and rays, on the CPU in float64 (the reference's float64 truth is what the golden vectors
// hold; only the per-ray results go to the GPU). The camera sits on the unit sphere looking at the
// origin; a pose is (pitch, yaw) in radians, with (pi/2, pi/2) the frontal view from +z.
import type { Random } from '../engine/nn/random.ts';
import type { PoseDistribution } from './config.ts';
import type { TorchGenerator } from './torch-random.ts';

export type Vec3 = [number, number, number];

/** One camera: where it is and the pose it was made from (the pose loss's target). */
export interface Camera {
  origin: Vec3;
  pitch: number;
  yaw: number;
}

/** Where the background plane lies (world z), one extra point per ray. */
export const BACKGROUND_PLANE_Z = -0.12;

const PITCH_EPS = 1e-5;

/** The camera at (pitch, yaw) on the sphere of `radius`: [sin p cos y, cos p, sin p sin y]; the
 * pitch is clamped to [1e-5, pi - 1e-5] as in the reference. */
export function cameraFromPose(pitch: number, yaw: number, radius = 1): Camera {
  const p = Math.min(Math.max(pitch, PITCH_EPS), Math.PI - PITCH_EPS);
  return { origin: [radius * Math.sin(p) * Math.cos(yaw), radius * Math.cos(p), radius * Math.sin(p) * Math.sin(yaw)], pitch: p, yaw };
}

/**
 * n training cameras from the pose distribution: all n yaws are drawn first, then all n pitches
 * (the reference's order: torch.randn for theta, then for phi).
 */
export function sampleCameras(n: number, dist: PoseDistribution, rng: Random): Camera[] {
  const draw = (mean: number, std: number) => {
    if (dist.sample_dist === 'gaussian') return rng.normal(mean, std);
    if (dist.sample_dist === 'uniform') return (rng.uniform() - 0.5) * 2 * std + mean;
    return mean;
  };
  const yaws = Array.from({ length: n }, () => draw(dist.h_mean, dist.h_stddev));
  const pitches = Array.from({ length: n }, () => draw(dist.v_mean, dist.v_stddev));
  return yaws.map((yaw, i) => cameraFromPose(pitches[i], yaw));
}

/** The poses of `cameras` as (pitch, yaw) rows, [n, 2] row-major. */
export function cameraPoses(cameras: readonly Camera[]): Float32Array {
  return Float32Array.from(cameras.flatMap((c) => [c.pitch, c.yaw]));
}

export function linspace(start: number, end: number, n: number): Float64Array {
  return Float64Array.from({ length: n }, (_, i) => (n === 1 ? start : start + ((end - start) * i) / (n - 1)));
}

function normalize(v: Vec3): Vec3 {
  const n = Math.hypot(v[0], v[1], v[2]);
  return [v[0] / n, v[1] / n, v[2] / n];
}

function cross(a: Vec3, b: Vec3): Vec3 {
  return [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]];
}

/**
 * The rotation of cam2world as a row-major 3x3 matrix: forward = normalize(-origin),
 * left = normalize(up x forward) with up = +y, up' = normalize(forward x left), columns
 * (-left, up', -forward). The translation is the origin itself.
 */
export function cameraRotation(origin: Vec3): Float64Array {
  const forward = normalize([-origin[0], -origin[1], -origin[2]]);
  const left = normalize(cross([0, 1, 0], forward));
  const up = normalize(cross(forward, left));
  const cols = [[-left[0], -left[1], -left[2]], up, [-forward[0], -forward[1], -forward[2]]];
  return Float64Array.from({ length: 9 }, (_, k) => cols[k % 3][Math.floor(k / 3)]);
}

/**
 * Unit ray directions in camera space, [H*W, 3] row-major over pixels (row y, column x): x from -1
 * (left column) to 1, y from 1 (top row) to -1, z = -1/tan(fov/2).
 */
export function cameraDirections(height: number, width: number, fovDegrees: number): Float64Array {
  const xs = linspace(-1, 1, width);
  const ys = linspace(1, -1, height);
  const z = -1 / Math.tan((fovDegrees * Math.PI) / 360);
  const out = new Float64Array(height * width * 3);
  for (let row = 0; row < height; row++) {
    for (let col = 0; col < width; col++) {
      const d = normalize([xs[col], ys[row], z]);
      out.set(d, (row * width + col) * 3);
    }
  }
  return out;
}

/** World-space rays of one camera. */
export interface Rays {
  origin: Vec3;
  /** [R, 3] unit directions, R = H*W pixels row-major. */
  directions: Float64Array;
}

export function worldRays(camera: Camera, height: number, width: number, fovDegrees: number): Rays {
  const rot = cameraRotation(camera.origin);
  const cam = cameraDirections(height, width, fovDegrees);
  const directions = new Float64Array(cam.length);
  for (let i = 0; i < cam.length; i += 3) {
    for (let r = 0; r < 3; r++) directions[i + r] = rot[3 * r] * cam[i] + rot[3 * r + 1] * cam[i + 1] + rot[3 * r + 2] * cam[i + 2];
  }
  return { origin: [...camera.origin], directions };
}

/** Where each ray meets the plane z = planeZ: o + d (planeZ - o_z) / d_z, [R, 3]. */
export function planeIntersections(rays: Rays, planeZ = BACKGROUND_PLANE_Z): Float64Array {
  const [ox, oy, oz] = rays.origin;
  const d = rays.directions;
  const out = new Float64Array(d.length);
  for (let i = 0; i < d.length; i += 3) {
    const t = (planeZ - oz) / d[i + 2];
    out[i] = ox + d[i] * t;
    out[i + 1] = oy + d[i + 1] * t;
    out[i + 2] = oz + d[i + 2] * t;
  }
  return out;
}

/** The reference's random camera for `rand`: sample_camera_positions, yaw (theta) drawn first. */
export function randomPose(pose: PoseDistribution, g: TorchGenerator): [number, number] {
  const f = Math.fround;
  const { sample_dist: dist, h_mean, h_stddev, v_mean, v_stddev } = pose;
  if (dist === 'gaussian') {
    const yaw = f(f(f(g.normalDouble()) * f(h_stddev)) + f(h_mean));
    const pitch = f(f(f(g.normalDouble()) * f(v_stddev)) + f(v_mean));
    return [pitch, yaw];
  }
  if (dist === 'uniform') {
    const draw = (mean: number, std: number) => f(f(f(f(g.uniformFloat() - 0.5) * 2) * f(std)) + f(mean));
    const yaw = draw(h_mean, h_stddev);
    return [draw(v_mean, v_stddev), yaw];
  }
  return [v_mean, h_mean];
}
