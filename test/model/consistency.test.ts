// The reprojection measure (model/consistency.ts) on an analytic scene: a textured sphere in front of
// a textured background plane, ray-traced on the CPU from two cameras with exact depth, and checked
// against a ray-cast ground truth of what camera A sees.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { BACKGROUND_PLANE_Z, cameraFromPose, cameraRotation, worldRays, type Camera, type Vec3 } from '../../model/camera.ts';
import { insideFrame, projectPoint, reprojectionError, upsampleBilinear, type RenderedView } from '../../model/consistency.ts';

const FOV = 12;
const SIZE = 64;
const CENTRE: Vec3 = [0, 0, 0];
const RADIUS = 0.06;
const front = Math.PI / 2;

/** Distance along the unit ray (o, d) to the first surface: the sphere, else the plane z = -0.12. */
function firstHit(o: readonly number[], d: readonly number[]): number {
  const oc = [o[0] - CENTRE[0], o[1] - CENTRE[1], o[2] - CENTRE[2]];
  const b = oc[0] * d[0] + oc[1] * d[1] + oc[2] * d[2];
  const disc = b * b - (oc[0] ** 2 + oc[1] ** 2 + oc[2] ** 2 - RADIUS ** 2);
  if (disc >= 0 && -b - Math.sqrt(disc) > 0) return -b - Math.sqrt(disc);
  return (BACKGROUND_PLANE_Z - o[2]) / d[2];
}

/** A smooth colour of a world point, 0..255 per channel (a period of ~40 pixels at 64x64). */
function texture(x: number, y: number, z: number, c: number): number {
  return 128 + 90 * Math.sin(30 * x + 20 * y + 2 * c) * Math.cos(25 * y - 15 * z + c);
}

function renderScene(camera: Camera): RenderedView {
  const { origin, directions } = worldRays(camera, SIZE, SIZE, FOV);
  const plane = SIZE * SIZE;
  const image = new Float32Array(3 * plane);
  const depth = new Float32Array(plane);
  for (let p = 0; p < plane; p++) {
    const d = [directions[3 * p], directions[3 * p + 1], directions[3 * p + 2]];
    const t = firstHit(origin, d);
    depth[p] = t;
    for (let c = 0; c < 3; c++) image[c * plane + p] = texture(origin[0] + t * d[0], origin[1] + t * d[1], origin[2] + t * d[2], c);
  }
  return { camera, image, depth, height: SIZE, width: SIZE };
}

/** A's image moved `dx` pixels to the right (edge columns repeated). */
function shifted(view: RenderedView, dx: number): RenderedView {
  const image = new Float32Array(view.image.length);
  for (let c = 0; c < 3; c++) {
    for (let y = 0; y < SIZE; y++) {
      for (let x = 0; x < SIZE; x++) image[(c * SIZE + y) * SIZE + x] = view.image[(c * SIZE + y) * SIZE + Math.min(SIZE - 1, Math.max(0, x - dx))];
    }
  }
  return { ...view, image };
}

/** Ground truth: B's pixels whose surface point lies inside A's frame, and those of them A sees. */
function groundTruth(a: RenderedView, b: RenderedView): { inFrame: number; seen: number } {
  const rays = worldRays(b.camera, SIZE, SIZE, FOV);
  const rotation = cameraRotation(a.camera.origin);
  let inFrame = 0;
  let seen = 0;
  for (let p = 0; p < SIZE * SIZE; p++) {
    const x = [0, 1, 2].map((k) => rays.origin[k] + b.depth[p] * rays.directions[3 * p + k]);
    const hit = projectPoint(x, a.camera, rotation, SIZE, SIZE, FOV);
    if (!hit || !insideFrame(hit, SIZE, SIZE)) continue;
    inFrame++;
    const toX = x.map((v, k) => (v - a.camera.origin[k]) / hit.distance);
    // the depths are float32: X is off the surface by ~1e-7
    if (Math.abs(firstHit(a.camera.origin, toX) - hit.distance) < 1e-5) seen++;
  }
  return { inFrame, seen };
}

const viewA = renderScene(cameraFromPose(front, front));
const viewB = renderScene(cameraFromPose(front, front + 0.3));
const options = { fov: FOV, depthTolerance: 0.01 };

test('projectPoint inverts worldRays: o + t dir lands on its own pixel', () => {
  const camera = cameraFromPose(front + 0.2, front - 0.4);
  const { origin, directions } = worldRays(camera, 7, 9, FOV);
  const rotation = cameraRotation(camera.origin);
  for (let p = 0; p < 63; p++) {
    const t = 0.9 + 0.003 * p;
    const hit = projectPoint([0, 1, 2].map((k) => origin[k] + t * directions[3 * p + k]), camera, rotation, 7, 9, FOV)!;
    assert.ok(Math.abs(hit.row - Math.floor(p / 9)) < 1e-9 && Math.abs(hit.col - (p % 9)) < 1e-9, `pixel ${p}: (${hit.row}, ${hit.col})`);
    assert.ok(Math.abs(hit.distance - t) < 1e-12);
  }
  assert.is(projectPoint([0, 0, 2], cameraFromPose(front, front), cameraRotation([0, 0, 1]), 7, 9, FOV), null, 'behind the camera');
});

test('a view against itself: no error, every pixel visible', () => {
  const r = reprojectionError(viewA, viewA, options);
  assert.ok(r.error < 1e-6, `${r.error}`);
  assert.is(r.visibleFraction, 1);
});

test('the exact pair: error ~0; an image shifted by a pixel or two: clearly larger', () => {
  const exact = reprojectionError(viewA, viewB, options);
  // only the bilinear sampling of a smooth texture differs: ~0.1 of 255
  assert.ok(exact.error < 0.5, `exact pair: ${exact.error}`);
  const one = reprojectionError(shifted(viewA, 1), viewB, options);
  const two = reprojectionError(shifted(viewA, 2), viewB, options);
  // a shift of s pixels changes the texture by ~|gradient| s ~ 5 s of 255
  assert.ok(one.error > 2 && one.error > 10 * exact.error, `1 pixel: ${one.error} (exact ${exact.error})`);
  assert.ok(two.error > 1.7 * one.error, `2 pixels: ${two.error}, 1 pixel: ${one.error}`);
  assert.is(one.visibleFraction, exact.visibleFraction, 'visibility comes from the depths alone');
});

test('visible fraction: out-of-frame and occluded pixels of B are left out, as ray casting says', () => {
  const r = reprojectionError(viewA, viewB, options);
  const truth = groundTruth(viewA, viewB);
  const n = SIZE * SIZE;
  // the setup does occlude: the plane behind the sphere's edge that B sees and A does not
  assert.ok(truth.inFrame - truth.seen > 0.02 * n, `occluded: ${truth.inFrame - truth.seen} of ${n}`);
  assert.ok(n - truth.inFrame > 0.02 * n, `outside A: ${n - truth.inFrame} of ${n}`);
  // the bilinear depth test differs from ray casting only along the sphere's silhouette in A (~120
  // pixels around), where A's depth jumps between neighbours
  assert.ok(r.visible <= truth.seen && truth.seen - r.visible < 150, `visible ${r.visible}, ray cast ${truth.seen}`);
  const noDepthTest = reprojectionError(viewA, viewB, { ...options, depthTolerance: Infinity });
  assert.is(noDepthTest.visible, truth.inFrame, 'without the depth test: every in-frame pixel');
  assert.ok(noDepthTest.error > 2 * r.error, `occluded pixels add error: ${noDepthTest.error} vs ${r.error}`);
});

test('upsampleBilinear: corners kept, linear ramps exact (align_corners=True)', () => {
  const h = 3;
  const w = 4;
  const image = Float32Array.from({ length: 2 * h * w }, (_, i) => {
    const c = Math.floor(i / (h * w));
    const y = Math.floor((i % (h * w)) / w);
    const x = i % w;
    return c * 100 + 2 * y + 3 * x;
  });
  const up = upsampleBilinear(image, h, w, 5, 7);
  for (let c = 0; c < 2; c++) {
    for (let y = 0; y < 5; y++) {
      for (let x = 0; x < 7; x++) {
        const expected = c * 100 + 2 * (y * (h - 1)) / 4 + 3 * (x * (w - 1)) / 6;
        assert.ok(Math.abs(up[(c * 5 + y) * 7 + x] - expected) < 1e-4, `(${c}, ${y}, ${x})`);
      }
    }
  }
});

test.run();
