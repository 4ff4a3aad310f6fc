// Each encoder's inference on a thread of its own. onnxruntime-node runs a session synchronously
// on the calling thread (its run() only defers to setImmediate), so sessions on the thread that
// reads and feeds the decode threads would stall both for every batch (the decode threads finish
// their image and wait), and three encoders could never run at once. On its own thread each
// encoder's session runs while the others and the decode threads work: the slowest sets the pace.
// One thread per encoder settings per process, shared by every unit that runs in it: units on the
// main thread call it directly, units in unit threads (runner/distributed/thread-pool.ts) through
// a port the main thread hands them (encoder-broker.ts), so units that run together load each
// model once.
import { MessageChannel, type MessagePort, Worker, workerData } from 'node:worker_threads';
import type { Config } from '../config/schema.ts';
import type { EncoderJob, EncoderReply } from './encoder-thread-body.ts';
import type { ImageSlot } from './image-tensor.ts';
import type { Vectors } from './onnx-encoder.ts';
import { resolveEncoders, type ImageEncoderSpec, type TextEncoderSpec } from './resolve.ts';
import type { SessionSettings } from './sessions.ts';

type Spec = ImageEncoderSpec | TextEncoderSpec;

export class EncoderThread<S extends Spec = Spec> {
  private readonly pending = new Map<number, { resolve(v: Vectors): void; reject(e: Error): void }>();
  private nextId = 0;
  private failure?: Error;

  /** `endpoint`: the encoder's thread itself, or a port to it; `forget` drops it from its cache when it dies. */
  constructor(
    readonly spec: S,
    readonly settings: SessionSettings,
    /** The model's input element type (an image encoder's tensor slots are made in it). */
    readonly inputType: string,
    private readonly endpoint: Worker | MessagePort,
    forget: () => void,
  ) {
    endpoint.on('message', (m: EncoderReply) => {
      if (!('id' in m)) return;
      const job = this.pending.get(m.id);
      this.pending.delete(m.id);
      if (!this.pending.size) endpoint.unref();
      if ('error' in m) job?.reject(new Error(m.error));
      else job?.resolve(m.vectors);
    });
    const die = (err: Error) => {
      this.failure ??= err;
      forget(); // a later unit starts (or asks for) a new one
      for (const job of this.pending.values()) job.reject(this.failure);
      this.pending.clear();
    };
    const gone = new Error(`encoders.${spec.name}: the encoder thread stopped`);
    if (endpoint instanceof Worker) {
      endpoint.on('error', die);
      endpoint.on('exit', (code) => die(new Error(`encoders.${spec.name}: encoder thread exited with code ${code}`)));
    } else endpoint.on('close', () => die(gone));
    endpoint.unref();
  }

  /** Encoder threads this thread has started: each loads one session (for tests). */
  static started = 0;

  /** Starts the thread and loads the session there; rejects with OnnxEncoder.open's error. */
  static start<S extends Spec>(spec: S, settings: SessionSettings, forget: () => void): Promise<EncoderThread<S>> {
    EncoderThread.started++;
    // Compiled (dist/), threads load the JavaScript; from the sources, an entry that registers tsx first.
    const entry = new URL(import.meta.url.endsWith('.ts') ? './encoder-thread-entry.mjs' : './encoder-thread-body.js', import.meta.url);
    const worker = new Worker(entry, { workerData: { spec, settings } });
    return new Promise((resolve, reject) => {
      const first = (m: EncoderReply) => {
        if ('ready' in m) {
          worker.off('message', first);
          resolve(new EncoderThread(spec, settings, m.inputType, worker, forget));
        } else if ('failed' in m) {
          void worker.terminate();
          reject(new Error(m.failed));
        }
      };
      worker.on('message', first);
      worker.once('error', reject);
    });
  }

  /** A new port to this process's encoder thread, for a unit thread (the thread answers on it). */
  connect(): MessagePort {
    if (!(this.endpoint instanceof Worker)) throw new Error('only the thread that started an encoder thread can connect to it');
    const { port1, port2 } = new MessageChannel();
    this.endpoint.postMessage({ connect: port2 }, [port2]);
    return port1;
  }

  private send(job: Omit<EncoderJob, 'id'>, transfer: ArrayBuffer[] = []): Promise<Vectors> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      const id = this.nextId++;
      this.pending.set(id, { resolve, reject });
      this.endpoint.ref();
      this.endpoint.postMessage({ id, ...job }, transfer);
    });
  }

  /**
   * One batch of images' tensor slots in the model's input type (undefined for an image that
   * failed: a zero input). The slots are handed over, not copied: each is its encoder's alone
   * (image-tensor.ts makes one per encoder), and unusable here afterwards.
   */
  encodeImages(this: EncoderThread<ImageEncoderSpec>, rows: Array<ImageSlot | undefined>): Promise<Vectors> {
    return this.send({ rows }, [...new Set(rows.flatMap((r) => (r ? [r.buffer as ArrayBuffer] : [])))]);
  }

  encodeTexts(this: EncoderThread<TextEncoderSpec>, texts: string[]): Promise<Vectors> {
    return this.send({ texts });
  }
}

/** A cache of started (or connected) encoders by settings; a failed start is not kept. */
const threads = new Map<string, Promise<EncoderThread>>();
function cached<S extends Spec>(spec: S, settings: SessionSettings, make: (forget: () => void) => Promise<EncoderThread<S>>): Promise<EncoderThread<S>> {
  const key = JSON.stringify([spec, settings]);
  let t = threads.get(key);
  if (!t) {
    const mine = make(() => threads.get(key) === mine && threads.delete(key));
    t = mine;
    threads.set(key, t);
    t.catch(() => threads.delete(key));
  }
  return t as Promise<EncoderThread<S>>;
}

/** This process's encoder thread for `spec` with `settings`, started here on first use (the main thread's side of the broker). */
export function ownEncoderThread<S extends Spec>(spec: S, settings: SessionSettings): Promise<EncoderThread<S>> {
  return cached(spec, settings, (forget) => EncoderThread.start(spec, settings, forget));
}

// In a unit thread, the port to the main thread's broker (thread-pool.ts passes it in workerData).
const broker = (workerData as { encoderBroker?: MessagePort } | null)?.encoderBroker;
type Connection = { port: MessagePort; inputType: string };
const asked = new Map<number, { resolve(c: Connection): void; reject(e: Error): void }>();
let nextAsk = 0;
broker?.on('message', (m: { id: number; port?: MessagePort; inputType?: string; error?: string }) => {
  const a = asked.get(m.id);
  asked.delete(m.id);
  if (!asked.size) broker.unref();
  if (m.port) a?.resolve({ port: m.port, inputType: m.inputType! });
  else a?.reject(new Error(m.error));
});
broker?.unref();

/** The encoder for `spec` with `settings`: the process's own, through the broker from a unit thread. */
export function encoderThread<S extends Spec>(spec: S, settings: SessionSettings): Promise<EncoderThread<S>> {
  if (!broker) return ownEncoderThread(spec, settings);
  return cached(spec, settings, async (forget) => {
    const { port, inputType } = await new Promise<Connection>((resolve, reject) => {
      const id = nextAsk++;
      asked.set(id, { resolve, reject });
      broker.ref();
      broker.postMessage({ id, spec, settings });
    });
    return new EncoderThread(spec, settings, inputType, port, forget);
  });
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
