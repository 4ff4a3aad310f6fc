// Decoding and preprocessing off the inference thread: a pool of worker threads, one per process,
// each handed one image at a time (the JS resampler is CPU-bound; sharp's decode runs on libuv's
// threads). Threads keep the process alive only while they have work, so a finished run exits.
import os from 'node:os';
import { Worker } from 'node:worker_threads';
import { preprocessToSlots, type TensorResult, type TensorTask } from './image-tensor.ts';
import type { PreprocessResult, PreprocessTask } from './preprocess-images.ts';

interface Pending {
  resolve(r: TensorResult): void;
  reject(e: Error): void;
}

class DecodePool {
  private readonly idle: Worker[] = [];
  private readonly waiting: Array<{ task: TensorTask; pending: Pending }> = [];
  private readonly inFlight = new Map<number, { worker: Worker; pending: Pending }>();
  private readonly dead = new WeakSet<Worker>();
  private nextId = 0;

  constructor(size: number) {
    for (let i = 0; i < size; i++) this.idle.push(this.spawn());
  }

  private spawn(): Worker {
    // Compiled (dist/), threads load the JavaScript; from the sources, an entry that registers tsx first.
    const w = new Worker(new URL(import.meta.url.endsWith('.ts') ? './decode-thread-entry.mjs' : './decode-thread.js', import.meta.url));
    w.unref();
    w.on('message', ({ id, result }: { id: number; result: TensorResult }) => {
      const job = this.inFlight.get(id);
      this.inFlight.delete(id);
      w.unref();
      this.idle.push(w);
      job?.pending.resolve(result);
      this.dispatch();
    });
    w.on('error', (err) => this.fail(w, err));
    w.on('exit', (code) => this.fail(w, new Error(`decode thread exited with code ${code}`)));
    return w;
  }

  /** A thread that died takes its image with it (the unit fails and is retried); it is replaced. */
  private fail(w: Worker, err: Error): void {
    if (this.dead.has(w)) return;
    this.dead.add(w);
    const i = this.idle.indexOf(w);
    if (i >= 0) this.idle.splice(i, 1);
    for (const [id, job] of this.inFlight) {
      if (job.worker !== w) continue;
      this.inFlight.delete(id);
      job.pending.reject(err);
    }
    this.idle.push(this.spawn());
    this.dispatch();
  }

  run(task: TensorTask): Promise<TensorResult> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ task, pending: { resolve, reject } });
      this.dispatch();
    });
  }

  private dispatch(): void {
    while (this.idle.length && this.waiting.length) {
      const w = this.idle.pop()!;
      const { task, pending } = this.waiting.shift()!;
      const id = this.nextId++;
      this.inFlight.set(id, { worker: w, pending });
      w.ref();
      w.postMessage({ id, task });
    }
  }
}

const pools = new Map<number, DecodePool>();

/**
 * Decode threads for `encoders.decode_threads`; 1 decodes on the calling thread. 0 is one per core
 * the machine has: on a GPU inference leaves the cores to decoding, and on the CPU too, because
 * decoding never runs more than prefetch_batches chunks ahead of inference (then its threads wait)
 * and onnxruntime's threads do not spin by default, so each side takes the cores the other leaves
 * idle and neither is capped below what the machine has. With spin_wait onnxruntime's threads hold
 * their cores between operators, so decoding gets the rest: the cores less one unit's intra-op
 * threads (sessions.ts), at least one.
 */
export function decodeThreads(configured: number, spinning?: { intraOpThreads: number }): number {
  if (configured) return configured;
  const cores = os.availableParallelism();
  return spinning ? Math.max(1, cores - spinning.intraOpThreads) : cores;
}

/** Runs `task` on the process's pool of `threads` decode threads. */
function inPool(task: TensorTask, threads: number): Promise<TensorResult> {
  if (threads <= 1) return preprocessToSlots(task);
  let pool = pools.get(threads);
  if (!pool) pools.set(threads, (pool = new DecodePool(threads)));
  return pool.run(task);
}

/** Preprocesses with the process's pool of `threads` decode threads: RGB pixels per spec. */
export function preprocessInPool(task: PreprocessTask, threads: number): Promise<PreprocessResult> {
  return inPool(task, threads) as Promise<PreprocessResult>;
}

/** Preprocesses into each encoder's tensor slot (image-tensor.ts), of the element types in `task.tensors`. */
export function slotsInPool(task: Required<TensorTask>, threads: number): Promise<TensorResult> {
  return inPool(task, threads);
}
