// A fixed pool of worker threads that run units, one task per thread at a time. Stages do
// CPU-heavy work on the calling thread (hnswlib builds and searches synchronously, the JS around
// onnxruntime and sharp decodes batches), so a worker process keeps them off its main thread:
// there, BullMQ renews job locks and answers Redis whatever the load.
//
// One pool per process, shared by all the queues it serves, so threads (and what they cache:
// model sessions, index shards, catalog parts) are bounded by the pool size, not by the number
// of queues. Encoder sessions are the exception: the process keeps one per model, each on its own
// thread, and the unit threads reach them through ports (encoders/encoder-broker.ts).
import { Worker } from 'node:worker_threads';
import { encoderBroker } from '../../encoders/encoder-broker.ts';
import type { MetricsSnapshot } from '../../metrics/registry.ts';

/** The task was in hand when the pool was aborted (shutdown): it did not finish. */
export class AbortedError extends Error {
  constructor() {
    super('the worker thread was stopped before the unit finished');
    this.name = 'AbortedError';
  }
}

interface Task<I, O> {
  input: I;
  resolve(o: O): void;
  reject(e: Error): void;
}

type Reply<O> =
  | { ready: true }
  | { metrics: MetricsSnapshot }
  | { ok: true; result: O }
  | { ok: false; error: { message: string; stack?: string; name?: string } };

export class ThreadPool<I, O> {
  private readonly threads = new Set<Worker>();
  private readonly idle: Worker[] = [];
  private readonly busy = new Map<Worker, Task<I, O>>();
  private readonly pending: Task<I, O>[] = [];
  private stopping = false;
  /** Set when a dead thread could not be replaced: the process can run no more units. */
  private broken?: Error;
  /** Each thread's latest metrics (a dead thread's stay, so counters never go back). */
  private readonly snapshots = new Map<Worker, MetricsSnapshot>();

  constructor(
    private readonly entry: URL,
    private readonly size: number,
    private readonly workerData: unknown,
  ) {}

  /** Starts every thread and waits until each has loaded its modules. */
  async start(): Promise<void> {
    await Promise.all(Array.from({ length: this.size }, () => this.spawn()));
  }

  run(input: I): Promise<O> {
    if (this.stopping) return Promise.reject(new AbortedError());
    if (this.broken) return Promise.reject(this.broken);
    return new Promise<O>((resolve, reject) => {
      this.pending.push({ input, resolve, reject });
      this.dispatch();
    });
  }

  /** The threads' latest metrics, to serve with the process's own. */
  metrics(): MetricsSnapshot[] {
    return [...this.snapshots.values()];
  }

  /** Stops every thread now; tasks in hand or queued reject with AbortedError. */
  async abort(): Promise<void> {
    this.stopping = true;
    for (const t of this.pending.splice(0)) t.reject(new AbortedError());
    await Promise.all([...this.threads].map((w) => w.terminate()));
  }

  private spawn(): Promise<void> {
    // Each thread gets a port on which it asks for the process's encoder threads, shared by all units.
    const { port } = encoderBroker();
    const w = new Worker(this.entry, { workerData: { ...(this.workerData as object), encoderBroker: port }, transferList: [port] });
    this.threads.add(w);
    return new Promise<void>((resolve, reject) => {
      let started = false;
      let failure: Error | undefined;
      w.on('message', (m: Reply<O>) => {
        if ('ready' in m) {
          started = true;
          this.idle.push(w);
          this.dispatch();
          resolve();
          return;
        }
        if ('metrics' in m) {
          this.snapshots.set(w, m.metrics);
          return;
        }
        const t = this.busy.get(w);
        this.busy.delete(w);
        this.idle.push(w);
        if (t) {
          if (m.ok) t.resolve(m.result);
          else t.reject(Object.assign(new Error(m.error.message), { stack: m.error.stack, name: m.error.name ?? 'Error' }));
        }
        this.dispatch();
      });
      w.on('error', (err) => (failure = err));
      w.on('exit', (code) => {
        this.threads.delete(w);
        const t = this.busy.get(w);
        this.busy.delete(w);
        const i = this.idle.indexOf(w);
        if (i >= 0) this.idle.splice(i, 1);
        const err = this.stopping ? new AbortedError() : (failure ?? new Error(`worker thread exited with code ${code}`));
        t?.reject(err);
        if (!started) reject(err);
        // A thread that died on its own (an uncaught error in a stage) is replaced.
        else if (!this.stopping) this.spawn().catch((e: Error) => this.failAll(e));
      });
    });
  }

  private failAll(err: Error): void {
    this.broken = new Error(`a unit thread died and could not be restarted: ${err.message}`);
    for (const t of this.pending.splice(0)) t.reject(this.broken);
  }

  private dispatch(): void {
    while (this.idle.length && this.pending.length) {
      const w = this.idle.pop()!;
      const t = this.pending.shift()!;
      this.busy.set(w, t);
      w.postMessage(t.input);
    }
  }
}
