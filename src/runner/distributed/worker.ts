// A worker process: a BullMQ Worker per queue of its kind, all handing units to one pool of
// threads; barrier jobs (control queue) run on the main thread, as they only plan and enqueue
// (job-processors.ts).
//
// Crash safety comes from BullMQ's locks: a worker renews the lock of each job in hand every
// lock_ms/2; when a worker dies (kill -9, a lost node) its locks lapse and any other worker's
// stalled-job check (every lock_ms/4) moves the jobs back to wait, lock_ms/2 to 1.25 x lock_ms
// after the death. A worker holds only the jobs it runs (slot-worker.ts), so that is all a death
// strands. Units skip complete artifacts, so a unit run twice writes its output once. A stall is
// not a failed attempt: preemptible nodes are killed often, so a unit may lose its worker
// runner.max_stalls times, apart from its runner.attempts.
// Every unit that fails for good (its last attempt, too many stalls, a refusal) goes to the ledger
// from here (failure-recorder.ts), the one place that sees all three. Stop (SIGTERM) stops taking
// jobs, lets the ones in hand finish within the grace period, and after that returns them to the
// queue for another worker.
import { Worker, type Processor, type WorkerOptions as QueueWorkerOptions } from 'bullmq';
import { hostname } from 'node:os';
import type { StageContext } from '../../core/stage.ts';
import { acceptRun } from './run-identity.ts';
import { connectRedis, isConnectionError, watchOutages } from './connection.ts';
import { queuesOfKind } from './kinds.ts';
import { runMetricsSources } from './queue-metrics.ts';
import type { MetricsServer } from '../../metrics/server.ts';
import { CONTROL, RunQueues } from './queues.ts';
import { UnitThreads } from '../threads/unit-threads.ts';
import { SlotWorker, Slots } from './slot-worker.ts';
import { FailureRecorder } from './failure-recorder.ts';
import { JobProcessors } from './job-processors.ts';
import { ServedRun } from './served-run.ts';

export interface WorkerOptions {
  /** Units in hand at once (threads); default runner.concurrency. */
  concurrency?: number;
  /** After stop(), how long units in hand may run on before they are returned to the queue. */
  graceMs?: number;
  log?: (line: string) => void;
  /** A metrics server started before the worker (so it answers while the worker waits): scrapes read this worker's queues once it serves them. */
  metrics?: MetricsServer;
}

export interface RunningWorker {
  readonly queues: readonly string[];
  /** The key of the run it serves. */
  readonly run: string;
  /** Rejects with a RunMismatchError if the run is restarted with a config this worker disagrees with (the worker stops). */
  readonly refused: Promise<never>;
  /** Stop taking jobs; finish or return the ones in hand; release Redis and the threads. */
  stop(): Promise<void>;
}

/** `ctx`: the process's one context; its keys are set to those of the run the worker serves. */
export async function startWorker(ctx: StageContext, kind: string, opts: WorkerOptions = {}): Promise<RunningWorker> {
  const config = ctx.config;
  const queues = queuesOfKind(kind);
  const concurrency = opts.concurrency ?? config.runner.concurrency;
  const log = opts.log ?? (() => {});
  const unitQueues = queues.filter((q) => q !== CONTROL);

  const connection = await connectRedis(config, `megapairs-worker-${kind}`);
  const outages = watchOutages(connection, config, log);
  // Refuse at start, before any job is taken, when this config would write other artifacts.
  const accepted = await acceptRun(connection, ctx, log).catch((err: Error) => {
    connection.disconnect();
    throw err;
  });
  const threads = new UnitThreads(config, unitQueues.length ? concurrency : 0);
  await threads.start().catch((err: Error) => {
    connection.disconnect();
    throw err;
  });
  const rq = new RunQueues(config, connection);
  const run = new ServedRun(ctx, rq, accepted, log);
  const processors = new JobProcessors(ctx, rq, run, threads, log);
  const failures = new FailureRecorder(ctx, rq, log);

  // Unit queues share the pool's threads as slots: a job is taken only when a thread is free for it.
  const slots = new Slots(concurrency);
  const workers = queues.map((q) => queueWorker(q, rq, { concurrency, processors, slots, failures, log }));

  const stop = stopper({ workers, threads, failures, rq, outages, graceMs: opts.graceMs ?? 25_000, log });

  await Promise.all(workers.map((w) => w.waitUntilReady()));
  opts.metrics?.setSources(runMetricsSources(rq, queues, () => threads.metrics()));
  return { queues, run: run.key, refused: run.refused, stop };
}

/** What a queue's BullMQ Worker is made of, besides its queue. */
interface QueueWorkerParts {
  concurrency: number;
  processors: JobProcessors;
  slots: Slots;
  failures: FailureRecorder;
  log: (line: string) => void;
}

/** The BullMQ Worker of one queue: barriers one at a time, units as the threads free up. */
function queueWorker(q: string, rq: RunQueues, { concurrency, processors, slots, failures, log }: QueueWorkerParts): Worker {
  const config = rq.config;
  const options: QueueWorkerOptions = {
    connection: rq.connection,
    prefix: rq.prefix,
    concurrency: q === CONTROL ? 1 : concurrency,
    lockDuration: config.runner.lock_ms,
    // A dead worker's lock lapses lock_ms after its last renewal; checking every lock_ms/4 finds
    // it soon after, where checking every lock_ms took up to twice that (a check marks, the next moves).
    stalledInterval: Math.max(250, Math.round(config.runner.lock_ms / 4)),
    // A unit whose worker keeps dying (a poison unit that kills the process) ends in the failed
    // set, but only after many deaths: a stall does not count as one of runner.attempts.
    maxStalledCount: config.runner.max_stalls,
    name: `${hostname()}-${process.pid}`,
  };
  const w =
    q === CONTROL ? new Worker(rq.name(q), processors.barrier as Processor, options) : new SlotWorker(rq.name(q), processors.unit as Processor, options, slots);
  // An outage is told once, with its length (watchOutages), not as each client's failed reconnects.
  w.on('error', (err) => isConnectionError(err) || log(`error on ${q}: ${err.message}`));
  w.on('stalled', (id) => log(`stalled ${id}: its worker stopped renewing the lock (killed?); back in the queue`));
  if (q !== CONTROL) w.on('failed', (job, err) => job && failures.failed(q, job, err));
  return w;
}

/** What stop() releases, in its order. */
interface WorkerParts {
  workers: Worker[];
  threads: UnitThreads;
  failures: FailureRecorder;
  rq: RunQueues;
  outages: { stop(): void };
  graceMs: number;
  log: (line: string) => void;
}

/** stop(), which does its work once however often it is called. */
function stopper({ workers, threads, failures, rq, outages, graceMs, log }: WorkerParts): () => Promise<void> {
  const connection = rq.connection;
  let stopping: Promise<void> | undefined;
  return () =>
    (stopping ??= (async () => {
      log(`stopping: no new jobs; units in hand get ${(graceMs / 1000).toFixed(0)}s to finish`);
      const timer = setTimeout(() => void threads.close(), graceMs);
      await Promise.all(workers.map((w) => w.close()));
      clearTimeout(timer);
      await failures.settled();
      await threads.close(); // the queue workers have closed, so no thread is busy: this only ends them
      await rq.close();
      outages.stop();
      await connection.quit().catch(() => connection.disconnect());
      log('stopped');
    })());
}
