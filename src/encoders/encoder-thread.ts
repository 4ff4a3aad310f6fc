// Each encoder's inference on a thread of its own. onnxruntime-node runs a session synchronously
// on the calling thread (its run() only defers to setImmediate), so sessions on the thread that
// reads and feeds the decode threads would stall both for every batch (the decode threads finish
// their image and wait), and three encoders could never run at once. On its own thread each
// encoder's session runs while the others and the decode threads work: the slowest sets the pace.
// One thread per encoder settings per process thread, shared by every unit that runs there, so
// units that run together load each model once.
import { Worker } from 'node:worker_threads';
import type { Config } from '../config/schema.ts';
import type { EncoderJob, EncoderReply } from './encoder-thread-body.ts';
import type { Vectors } from './onnx-encoder.ts';
import { resolveEncoders, type ImageEncoderSpec, type TextEncoderSpec } from './resolve.ts';
import type { SessionSettings } from './sessions.ts';

export class EncoderThread<S extends ImageEncoderSpec | TextEncoderSpec = ImageEncoderSpec | TextEncoderSpec> {
  private readonly pending = new Map<number, { resolve(v: Vectors): void; reject(e: Error): void }>();
  private nextId = 0;
  private failure?: Error;

  private constructor(
    readonly spec: S,
    readonly settings: SessionSettings,
    private readonly worker: Worker,
    key: string,
  ) {
    worker.on('message', (m: EncoderReply) => {
      if (!('id' in m)) return;
      const job = this.pending.get(m.id);
      this.pending.delete(m.id);
      if (!this.pending.size) worker.unref();
      if ('error' in m) job?.reject(new Error(m.error));
      else job?.resolve(m.vectors);
    });
    const die = (err: Error) => {
      this.failure = err;
      threads.delete(key); // a later unit starts a new one
      for (const job of this.pending.values()) job.reject(err);
      this.pending.clear();
    };
    worker.on('error', die);
    worker.on('exit', (code) => die(new Error(`encoders.${spec.name}: encoder thread exited with code ${code}`)));
  }

  /** Starts the thread and loads the session there; rejects with OnnxEncoder.open's error. */
  static start<S extends ImageEncoderSpec | TextEncoderSpec>(spec: S, settings: SessionSettings, key: string): Promise<EncoderThread<S>> {
    // Compiled (dist/), threads load the JavaScript; from the sources, an entry that registers tsx first.
    const entry = new URL(import.meta.url.endsWith('.ts') ? './encoder-thread-entry.mjs' : './encoder-thread-body.js', import.meta.url);
    const worker = new Worker(entry, { workerData: { spec, settings } });
    return new Promise((resolve, reject) => {
      const first = (m: EncoderReply) => {
        if ('ready' in m) {
          worker.off('message', first);
          worker.unref();
          resolve(new EncoderThread(spec, settings, worker, key));
        } else if ('failed' in m) {
          void worker.terminate();
          reject(new Error(m.failed));
        }
      };
      worker.on('message', first);
      worker.once('error', reject);
    });
  }

  private send(job: Omit<EncoderJob, 'id'>): Promise<Vectors> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      const id = this.nextId++;
      this.pending.set(id, { resolve, reject });
      this.worker.ref();
      this.worker.postMessage({ id, ...job });
    });
  }

  /** One batch of RGB size*size*3 rows (undefined for an image that failed: a zero input). */
  encodeImages(this: EncoderThread<ImageEncoderSpec>, rows: Array<Uint8Array | undefined>): Promise<Vectors> {
    return this.send({ rows });
  }

  encodeTexts(this: EncoderThread<TextEncoderSpec>, texts: string[]): Promise<Vectors> {
    return this.send({ texts });
  }
}

const threads = new Map<string, Promise<EncoderThread>>();

/** This thread's encoder thread for `spec` with `settings`, started on first use; a failed start is not kept. */
export function encoderThread<S extends ImageEncoderSpec | TextEncoderSpec>(spec: S, settings: SessionSettings): Promise<EncoderThread<S>> {
  const key = JSON.stringify([spec, settings]);
  let t = threads.get(key);
  if (!t) {
    t = EncoderThread.start(spec, settings, key);
    threads.set(key, t);
    t.catch(() => threads.delete(key));
  }
  return t as Promise<EncoderThread<S>>;
}

export interface EncoderThreads {
  images: EncoderThread<ImageEncoderSpec>[];
  caption: EncoderThread<TextEncoderSpec>;
}

/** The config's three encoders, resolved (built-ins made under cacheDir), each on its thread. */
export async function openEncoderThreads(config: Config, cacheDir: string): Promise<EncoderThreads> {
  const r = await resolveEncoders(config, cacheDir);
  // Loaded at once; a failure is reported for the first encoder in config order, as one at a time would.
  const started = await Promise.allSettled([...r.images.map((s) => encoderThread(s, r.settings)), encoderThread(r.caption, r.settings)]);
  const failed = started.find((s) => s.status === 'rejected');
  if (failed) throw failed.reason;
  const all = started.map((s) => (s as PromiseFulfilledResult<EncoderThread>).value);
  return { images: all.slice(0, -1) as EncoderThread<ImageEncoderSpec>[], caption: all.at(-1) as EncoderThread<TextEncoderSpec> };
}
