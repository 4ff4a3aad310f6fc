// A worker process: a BullMQ Worker per queue of its kind, all handing units to one pool of
// threads; barrier jobs (control queue) run on the main thread, as they only plan and enqueue.
//
// Crash safety comes from BullMQ's locks: a worker renews the lock of each job in hand every
// lock_ms/2; when a worker dies (kill -9, a lost node) its locks lapse and any other worker's
// stalled-job check moves the jobs back to wait. Units skip complete artifacts, so a unit run
// twice writes its output once. Stop (SIGTERM) stops taking jobs, lets the ones in hand finish
// within the grace period, and after that returns them to the queue for another worker.
import { WaitingError, Worker, type Job, type Processor } from 'bullmq';
import { hostname } from 'node:os';
import type { Config } from '../../config/schema.ts';
import { createContext } from '../context.ts';
import { acceptRun, readPublishedRun } from './run-identity.ts';
import { connectRedis } from './connection.ts';
import { queuesOfKind } from './kinds.ts';
import { advance } from './phases.ts';
import { CONTROL, RunQueues, type ControlJobData, type UnitJobData, type UnitJobResult } from './queues.ts';
import { AbortedError, ThreadPool } from './thread-pool.ts';
import type { UnitTask } from './unit-thread.ts';

export interface WorkerOptions {
  /** Units in hand at once (threads); default runner.concurrency. */
  concurrency?: number;
  /** After stop(), how long units in hand may run on before they are returned to the queue. */
  graceMs?: number;
  log?: (line: string) => void;
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

// Compiled (dist/), threads load the JavaScript; from the sources, an entry that registers tsx first.
const THREAD_ENTRY = new URL(import.meta.url.endsWith('.ts') ? './unit-thread-entry.mjs' : './unit-thread.js', import.meta.url);

export async function startWorker(config: Config, kind: string, opts: WorkerOptions = {}): Promise<RunningWorker> {
  const queues = queuesOfKind(kind);
  const concurrency = opts.concurrency ?? config.runner.concurrency;
  const log = opts.log ?? (() => {});
  const where = `${hostname()} pid ${process.pid}`;
  const unitQueues = queues.filter((q) => q !== CONTROL);

  const connection = await connectRedis(config, `megapairs-worker-${kind}`);
  // Refuse at start, before any job is taken, when this config would write other artifacts.
  let accepted = await acceptRun(connection, config, log).catch((err: Error) => {
    connection.disconnect();
    throw err;
  });
  const pool = new ThreadPool<UnitTask, UnitJobResult>(THREAD_ENTRY, unitQueues.length ? concurrency : 0, { config });
  await pool.start().catch(async (err: Error) => {
    connection.disconnect();
    await pool.abort();
    throw new Error(`cannot start unit threads: ${err.message}`);
  });
  const rq = new RunQueues(config, connection);
  let ctx = queues.includes(CONTROL) ? createContext(config, accepted.keys) : undefined;
  let refuse!: (err: Error) => void;
  const refused = new Promise<never>((_, reject) => (refuse = reject));
  refused.catch(() => {});

  /**
   * Whether the job belongs to the run this worker serves. A job of a newer run (restarted with a
   * changed config) is served once this worker's config is checked against it; if it disagrees,
   * the job goes back and the worker refuses. A job of a superseded run is not run at all.
   */
  const serves = async (job: Job<{ run: string }>, token?: string): Promise<boolean> => {
    if (job.data.run === accepted.key) return true;
    const published = await readPublishedRun(connection, config);
    if (published?.key !== job.data.run) return false;
    try {
      accepted = await acceptRun(connection, config, log);
      if (ctx) ctx = createContext(config, accepted.keys);
      return true;
    } catch (err) {
      await job.moveToWait(token);
      refuse(err as Error);
      throw new WaitingError();
    }
  };

  const runUnit = async (job: Job<UnitJobData>, token?: string): Promise<UnitJobResult> => {
    const started = Date.now();
    if (!(await serves(job, token))) return { skipped: true, items: 0, failed: 0 };
    log(`start ${job.id}`);
    const final = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
    try {
      const r = await pool.run({ stage: job.data.stage, unit: job.data.unit, final, where: `${rq.name(job.data.stage)} job ${job.id} on ${where}`, keys: accepted.keys });
      log(`done ${job.id} ${r.skipped ? 'skipped (complete)' : `${r.items} items`} ${((Date.now() - started) / 1000).toFixed(1)}s`);
      return r;
    } catch (err) {
      if (err instanceof AbortedError) {
        // Shutdown overran its grace period: hand the unit back now rather than after lock_ms.
        await job.moveToWait(token);
        log(`returned ${job.id}`);
        throw new WaitingError();
      }
      log(`failed ${job.id} (attempt ${job.attemptsMade + 1}/${job.opts.attempts ?? 1}): ${(err as Error).message}`);
      throw err;
    }
  };

  const runBarrier = async (job: Job<ControlJobData>, token?: string): Promise<unknown> => {
    if (!(await serves(job, token))) return { superseded: true };
    log(`start ${job.id}`);
    const r = await advance(ctx!, rq, job.data.barrier, accepted.published);
    log(`done ${job.id}`);
    return r;
  };

  const workers = queues.map((q) => {
    const w = new Worker(rq.name(q), (q === CONTROL ? runBarrier : runUnit) as Processor, {
      connection,
      prefix: rq.prefix,
      concurrency: q === CONTROL ? 1 : concurrency,
      lockDuration: config.runner.lock_ms,
      stalledInterval: config.runner.lock_ms,
      // A unit whose worker keeps dying (a poison unit that kills the process) ends in the failed set.
      maxStalledCount: config.runner.attempts,
      name: `${hostname()}-${process.pid}`,
    });
    w.on('error', (err) => log(`error on ${q}: ${err.message}`));
    return w;
  });

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      log(`stopping: no new jobs; units in hand get ${((opts.graceMs ?? 25_000) / 1000).toFixed(0)}s to finish`);
      const timer = setTimeout(() => void pool.abort(), opts.graceMs ?? 25_000);
      await Promise.all(workers.map((w) => w.close()));
      clearTimeout(timer);
      await pool.abort(); // the queue workers have closed, so no thread is busy: this only ends them
      await rq.close();
      await connection.quit().catch(() => connection.disconnect());
      log('stopped');
    })());

  await Promise.all(workers.map((w) => w.waitUntilReady()));
  return { queues, run: accepted.key, refused, stop };
}
