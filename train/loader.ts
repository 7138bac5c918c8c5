// A prefetching batch loader: decodes the next batches ahead of the training loop, in this thread
// (one sample per macrotask, so GPU waits overlap with decoding) or in worker threads (true
// parallelism). Batches come out in a fixed order that depends only on the seed: which thread
// decoded what never matters. The stream is endless (epoch after epoch); drop_last per epoch.
import { availableParallelism } from 'node:os';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { epochFlips, epochOrder, ImageDataset, type DatasetDescription } from './dataset.ts';

/** One training batch. */
export interface Batch {
  /** [B, 3, S, S] in [-1, 1]. */
  images: Float32Array;
  /** [B, 2]: pitch, yaw per image. */
  poses: Float32Array;
  /** The dataset indices actually used (a substitute where a file failed to decode). */
  indices: Int32Array;
  /** 1 where the sample was mirrored (image and yaw). */
  flips: Uint8Array;
  /** Position in the stream: batch number since step 0, and the epoch it belongs to. */
  step: number;
  epoch: number;
}

export interface LoaderOptions {
  batchSize: number;
  /** Seeds the per-epoch shuffle and flips (default 0). */
  seed?: number;
  /** How many batches may be decoded ahead of the consumer (default 2). */
  prefetch?: number;
  /** Worker threads decoding batches; 0 decodes in this thread (default: cores - 1, at most 8). */
  workers?: number;
  /** Mirror half the samples at random (default true), as the authors' datasets do. */
  flip?: boolean;
  /** Data-parallel shard (default 0 of 1): each rank sees a disjoint slice of every epoch. */
  rank?: number;
  worldSize?: number;
  /** Resume at this batch number (default 0). */
  startStep?: number;
  /** Where skipped files are reported (default console.warn); each file once. */
  warn?: (message: string) => void;
}

/** What one batch is made of: decided up front from the seed alone. */
interface BatchPlan {
  step: number;
  epoch: number;
  indices: Int32Array;
  flips: Uint8Array;
}

interface DecodedBatch {
  images: Float32Array;
  poses: Float32Array;
  indices: Int32Array;
  /** Messages for files that failed and were substituted. */
  skipped: string[];
}

/**
 * Decodes a planned batch. A sample whose file fails is replaced by the next index that decodes
 * (deterministic for a given set of bad files); `yieldEvery` hands the event loop back between
 * samples when decoding on the training thread.
 */
async function decodeBatch(dataset: ImageDataset, plan: BatchPlan, bad: Set<number>, yieldEvery: boolean): Promise<DecodedBatch> {
  const b = plan.indices.length;
  const per = 3 * dataset.imgSize * dataset.imgSize;
  const images = new Float32Array(b * per);
  const poses = new Float32Array(b * 2);
  const indices = new Int32Array(b);
  const skipped: string[] = [];
  for (let i = 0; i < b; i++) {
    if (yieldEvery) await new Promise<void>((resolve) => setImmediate(resolve));
    const flip = plan.flips[i] === 1;
    let index = plan.indices[i];
    for (let tries = 0; ; tries++) {
      if (tries >= dataset.length) throw new Error(`${dataset.dir}: no image could be decoded`);
      if (!bad.has(index)) {
        try {
          dataset.imageInto(index, flip, images, i * per);
          break;
        } catch (e) {
          bad.add(index);
          skipped.push((e as Error).message);
        }
      }
      index = (index + 1) % dataset.length;
    }
    indices[i] = index;
    poses.set(dataset.pose(index, flip), 2 * i);
  }
  return { images, poses, indices, skipped };
}

interface WorkerJob {
  id: number;
  plan: BatchPlan;
}
type WorkerReply = { id: number; batch: DecodedBatch } | { id: number; error: string };

/** Starts a worker running this file's worker loop under tsx (the main thread's loader may not carry over). */
function startWorker(description: DatasetDescription): Worker {
  const bootstrap = `
    const { workerData } = require('node:worker_threads');
    import(workerData.tsx).then((m) => { m.register(); return import(workerData.entry); });`;
  return new Worker(bootstrap, {
    eval: true,
    workerData: {
      gramhdLoaderWorker: true,
      tsx: import.meta.resolve('tsx/esm/api'),
      entry: import.meta.url,
      description,
    },
  });
}

/** A pool of decoding workers, each taking one batch at a time. */
class WorkerPool {
  private idle: Worker[] = [];
  private waiting: Array<{ job: WorkerJob; resolve: (b: DecodedBatch) => void; reject: (e: Error) => void }> = [];
  private pending = new Map<number, { resolve: (b: DecodedBatch) => void; reject: (e: Error) => void; worker: Worker }>();
  private workers: Worker[] = [];
  private nextId = 0;
  private failure: Error | null = null;

  constructor(count: number, description: DatasetDescription) {
    for (let i = 0; i < count; i++) {
      const w = startWorker(description);
      w.on('message', (reply: WorkerReply) => this.finish(w, reply));
      w.on('error', (e) => this.fail(e));
      w.on('exit', (code) => {
        if (code !== 0) this.fail(new Error(`loader worker exited with code ${code}`));
      });
      w.unref();
      this.workers.push(w);
      this.idle.push(w);
    }
  }

  run(plan: BatchPlan): Promise<DecodedBatch> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.waiting.push({ job: { id: this.nextId++, plan }, resolve, reject });
      this.dispatch();
    });
  }

  private dispatch(): void {
    while (this.idle.length > 0 && this.waiting.length > 0) {
      const w = this.idle.pop()!;
      const { job, resolve, reject } = this.waiting.shift()!;
      this.pending.set(job.id, { resolve, reject, worker: w });
      w.ref(); // keep the process alive while a batch is being decoded
      w.postMessage(job);
    }
  }

  private finish(w: Worker, reply: WorkerReply): void {
    const p = this.pending.get(reply.id);
    if (!p) return;
    this.pending.delete(reply.id);
    w.unref();
    this.idle.push(w);
    if ('error' in reply) p.reject(new Error(reply.error));
    else p.resolve(reply.batch);
    this.dispatch();
  }

  private fail(e: Error): void {
    if (this.failure) return;
    this.failure = e;
    for (const p of this.pending.values()) p.reject(e);
    for (const q of this.waiting) q.reject(e);
    this.pending.clear();
    this.waiting = [];
  }

  async close(): Promise<void> {
    this.failure ??= new Error('loader closed');
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

/** The worker side: rebuilds the dataset from its description and decodes batches on request. */
function runWorker(description: DatasetDescription): void {
  const dataset = new ImageDataset(description);
  const bad = new Set<number>();
  parentPort!.on('message', (job: WorkerJob) => {
    decodeBatch(dataset, job.plan, bad, false).then(
      (batch) => parentPort!.postMessage({ id: job.id, batch } satisfies WorkerReply, [batch.images.buffer as ArrayBuffer, batch.poses.buffer as ArrayBuffer]),
      (e: Error) => parentPort!.postMessage({ id: job.id, error: e.message } satisfies WorkerReply),
    );
  });
}

if (!isMainThread && workerData?.gramhdLoaderWorker) runWorker(workerData.description as DatasetDescription);

/** An endless, deterministic, prefetching stream of batches. */
export class BatchLoader implements AsyncIterable<Batch> {
  /** Full batches per epoch for this rank (drop_last). */
  readonly batchesPerEpoch: number;
  private readonly seed: number;
  private readonly prefetch: number;
  private readonly flip: boolean;
  private readonly rank: number;
  private readonly worldSize: number;
  private readonly pool: WorkerPool | null;
  private readonly bad = new Set<number>();
  private readonly reported = new Set<string>();
  private readonly warn: (message: string) => void;
  private readonly ahead = new Map<number, { work: Promise<DecodedBatch>; flips: Uint8Array }>();
  private epochCache: { epoch: number; order: Int32Array; flips: Uint8Array } | null = null;
  private nextStep: number;
  private closed = false;

  constructor(
    readonly dataset: ImageDataset,
    readonly options: LoaderOptions,
  ) {
    const { batchSize } = options;
    this.seed = options.seed ?? 0;
    this.prefetch = Math.max(1, options.prefetch ?? 2);
    this.flip = options.flip ?? true;
    this.rank = options.rank ?? 0;
    this.worldSize = options.worldSize ?? 1;
    this.nextStep = options.startStep ?? 0;
    this.warn = options.warn ?? ((m: string) => console.warn(m));
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error(`batchSize must be a positive integer, got ${batchSize}`);
    const perRank = Math.ceil(dataset.length / this.worldSize);
    this.batchesPerEpoch = Math.floor(perRank / batchSize);
    if (this.batchesPerEpoch === 0) {
      throw new Error(`${dataset.dir}: ${perRank} images per rank, fewer than one batch of ${batchSize}`);
    }
    const workers = Math.min(options.workers ?? Math.min(8, availableParallelism() - 1), availableParallelism());
    this.pool = workers > 0 ? new WorkerPool(workers, dataset.describe()) : null;
  }

  /** The samples and flips of batch `step`: a function of the seed, rank and step only. */
  plan(step: number): BatchPlan {
    const epoch = Math.floor(step / this.batchesPerEpoch);
    if (this.epochCache?.epoch !== epoch) {
      const order = epochOrder(this.dataset.length, epoch, this.seed, this.rank, this.worldSize);
      const flips = this.flip ? epochFlips(order.length, epoch, this.seed, this.rank) : new Uint8Array(order.length);
      this.epochCache = { epoch, order, flips };
    }
    const { batchSize } = this.options;
    const start = (step - epoch * this.batchesPerEpoch) * batchSize;
    return {
      step,
      epoch,
      indices: this.epochCache.order.slice(start, start + batchSize),
      flips: this.epochCache.flips.slice(start, start + batchSize),
    };
  }

  private schedule(): void {
    for (let s = this.nextStep; s < this.nextStep + this.prefetch; s++) {
      if (this.ahead.has(s)) continue;
      const plan = this.plan(s);
      const work = this.pool ? this.pool.run(plan) : decodeBatch(this.dataset, plan, this.bad, true);
      work.catch(() => {}); // surfaced when this batch is awaited
      this.ahead.set(s, { work, flips: plan.flips });
    }
  }

  /** The next batch; starts decoding the ones after it before waiting. */
  async next(): Promise<Batch> {
    if (this.closed) throw new Error('loader closed');
    const step = this.nextStep;
    this.schedule();
    const { work, flips } = this.ahead.get(step)!;
    this.ahead.delete(step);
    this.nextStep++;
    this.schedule();
    const decoded = await work;
    for (const m of decoded.skipped) {
      if (!this.reported.has(m)) {
        this.reported.add(m);
        this.warn(`skipping ${m}`);
      }
    }
    return {
      images: decoded.images,
      poses: decoded.poses,
      indices: decoded.indices,
      flips,
      step,
      epoch: Math.floor(step / this.batchesPerEpoch),
    };
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Batch> {
    while (!this.closed) yield await this.next();
  }

  /** Stops the workers; batches still being decoded are dropped. */
  async close(): Promise<void> {
    this.closed = true;
    this.ahead.clear();
    await this.pool?.close();
  }
}

export function createLoader(dataset: ImageDataset, options: LoaderOptions): BatchLoader {
  return new BatchLoader(dataset, options);
}
