// A worker process: a BullMQ Worker per queue of its kind, all handing units to one pool of
// threads; barrier jobs (control queue) run on the main thread, as they only plan and enqueue.
//
// Crash safety comes from BullMQ's locks: a worker renews the lock of each job in hand every
// lock_ms/2; when a worker dies (kill -9, a lost node) its locks lapse and any other worker's
// stalled-job check (every lock_ms/4) moves the jobs back to wait, lock_ms/2 to 1.25 x lock_ms
// after the death. A worker holds only the jobs it runs (slot-worker.ts), so that is all a death
// strands. Units skip complete artifacts, so a unit run twice writes its output once. A stall is
// not a failed attempt: preemptible nodes are killed often, so a unit may lose its worker
// runner.max_stalls times, apart from its runner.attempts.
// Every unit that fails for good (its last attempt, too many stalls, a refusal) goes to the ledger
// from here, the one place that sees all three. Stop (SIGTERM) stops taking jobs, lets the ones in hand finish
// within the grace period, and after that returns them to the queue for another worker.
import { WaitingError, Worker, type Job, type Processor, type WorkerOptions as QueueWorkerOptions } from 'bullmq';
import { hostname } from 'node:os';
import type { StageContext } from '../../core/stage.ts';
import { itemFailuresTotal, itemsTotal, unitSeconds, unitsTotal } from '../../metrics/registry.ts';
import { acceptRun, readPublishedRun } from './run-identity.ts';
import { connectRedis, isConnectionError, watchOutages } from './connection.ts';
import { queuesOfKind } from './kinds.ts';
import { advance } from './phases.ts';
import { runMetricsSources } from './queue-metrics.ts';
import type { MetricsServer } from '../../metrics/server.ts';
import { CONTROL, RunQueues, unitIdOfJob, type ControlJobData, type UnitJobData, type UnitJobResult } from './queues.ts';
import { AbortedError } from '../threads/thread-pool.ts';
import { UnitThreads } from '../threads/unit-threads.ts';
import { SlotWorker, Slots } from './slot-worker.ts';
import { recordUnitFailure, type UnitFailureReason } from '../unit-failure.ts';
import { JobCheck } from './job-check.ts';
import { redacting } from '../../secrets/redact.ts';

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
  const where = `${hostname()} pid ${process.pid}`;
  const unitQueues = queues.filter((q) => q !== CONTROL);

  const connection = await connectRedis(config, `megapairs-worker-${kind}`);
  const outages = watchOutages(connection, config, log);
  // Refuse at start, before any job is taken, when this config would write other artifacts.
  let accepted = await acceptRun(connection, ctx, log).catch((err: Error) => {
    connection.disconnect();
    throw err;
  });
  const threads = new UnitThreads(config, unitQueues.length ? concurrency : 0);
  await threads.start().catch((err: Error) => {
    connection.disconnect();
    throw err;
  });
  const rq = new RunQueues(config, connection);
  rq.run = { key: accepted.key, keys: accepted.keys };
  ctx.keys = accepted.keys;
  const check = new JobCheck(rq, log);
  let refuse!: (err: Error) => void;
  const refused = new Promise<never>((_, reject) => (refuse = reject));
  refused.catch(() => {});

  /**
   * Whether the job belongs to the run this worker serves. A job of a newer run (restarted with a
   * changed config) is served once this worker's config is checked against it; if it disagrees,
   * the job goes back and the worker refuses (it never fails the job). A job of a superseded run
   * is not run at all.
   */
  const serves = async (job: Job<{ run: string }>, token?: string): Promise<boolean> => {
    if (job.data.run === accepted.key) return true;
    const published = await readPublishedRun(connection, config);
    if (published?.key !== job.data.run) return false;
    try {
      accepted = await acceptRun(connection, ctx, log);
      rq.run = { key: accepted.key, keys: accepted.keys };
      ctx.keys = accepted.keys;
      return true;
    } catch (err) {
      await job.moveToWait(token);
      refuse(err as Error);
      throw new WaitingError();
    }
  };

  // What a job's failure says is kept in Redis (failedReason, stacktrace): redacting() leaves secrets out.
  const runUnit = redacting(async (job: Job<UnitJobData>, token?: string): Promise<UnitJobResult> => {
    const started = Date.now();
    if (!(await serves(job, token))) return { skipped: true, items: 0, failed: 0 };
    // The run's own copy of the unit, never the job's (job-check.ts).
    const checked = await check.unit(ctx, accepted.key, job.queueName.slice(config.run.name.length + 1), job);
    if ('refused' in checked) return { skipped: true, items: 0, failed: 0, refused: checked.refused };
    log(`start ${job.id}`);
    const stage = job.data.stage;
    try {
      const r = await threads.run({ stage, unit: checked.unit, keys: accepted.keys });
      const seconds = (Date.now() - started) / 1000;
      log(`done ${job.id} ${r.skipped ? 'skipped (complete)' : `${r.items} items`} ${seconds.toFixed(1)}s`);
      unitsTotal.inc({ stage, outcome: r.skipped ? 'skipped' : 'done' });
      itemsTotal.inc({ stage }, r.items);
      itemFailuresTotal.inc({ stage }, r.failed);
      if (!r.skipped) unitSeconds.observe({ stage }, seconds);
      return r;
    } catch (err) {
      if (err instanceof AbortedError) {
        // Shutdown overran its grace period: hand the unit back now rather than after lock_ms.
        await job.moveToWait(token);
        log(`returned ${job.id}`);
        throw new WaitingError();
      }
      log(`failed ${job.id} (attempt ${job.attemptsMade + 1}/${job.opts.attempts ?? 1}): ${(err as Error).message}`);
      unitsTotal.inc({ stage, outcome: 'failed' });
      throw err;
    }
  });

  const runBarrier = redacting(async (job: Job<ControlJobData>, token?: string): Promise<unknown> => {
    if (!(await serves(job, token))) return { superseded: true };
    const refused = await check.barrier(ctx, accepted.key, job);
    if (refused) return { refused };
    log(`start ${job.id}`);
    // The run as published now: a \`megapairs run\` of the same key since (a rebuild) tells its reports what came before it.
    const published = await readPublishedRun(connection, config);
    const r = await advance(ctx, rq, job.data, published?.key === accepted.key ? published : accepted.published);
    log(`done ${job.id}`);
    return r;
  });

  // Ledger writes in flight, awaited by stop().
  const writes = new Set<Promise<void>>();
  const track = (p: Promise<void>) => (writes.add(p), void p.finally(() => writes.delete(p)));
  /** A unit that failed for good (BullMQ sets finishedOn only then) goes to the ledger. */
  const recordFailure = async (stage: string, job: Job, err: Error): Promise<void> => {
    if (!job.finishedOn) return; // it will be retried
    let reason: UnitFailureReason = 'unit_failed';
    let message = err.message;
    if (job.stalledCounter > config.runner.max_stalls) {
      reason = 'unit_stalled';
      message = `its worker stopped renewing the lock ${job.stalledCounter} times (killed, or hung), more than runner.max_stalls (${config.runner.max_stalls})`;
    }
    const at = `${rq.name(stage)} job ${job.id} (failed on ${where})`;
    await recordUnitFailure(ctx, stage, unitIdOfJob(job, stage), at, reason, message).catch((e: Error) =>
      log(`cannot write the ledger entry of ${job.id}: ${e.message}`),
    );
    log(`failed for good ${job.id} (${reason}): ${message}`);
  };

  // Unit queues share the pool's threads as slots: a job is taken only when a thread is free for it.
  const slots = new Slots(concurrency);
  const workers = queues.map((q) => {
    const options: QueueWorkerOptions = {
      connection,
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
    const w = q === CONTROL ? new Worker(rq.name(q), runBarrier as Processor, options) : new SlotWorker(rq.name(q), runUnit as Processor, options, slots);
    // An outage is told once, with its length (watchOutages), not as each client's failed reconnects.
    w.on('error', (err) => isConnectionError(err) || log(`error on ${q}: ${err.message}`));
    w.on('stalled', (id) => log(`stalled ${id}: its worker stopped renewing the lock (killed?); back in the queue`));
    if (q !== CONTROL) w.on('failed', (job, err) => job && track(recordFailure(q, job, err)));
    return w;
  });

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      log(`stopping: no new jobs; units in hand get ${((opts.graceMs ?? 25_000) / 1000).toFixed(0)}s to finish`);
      const timer = setTimeout(() => void threads.close(), opts.graceMs ?? 25_000);
      await Promise.all(workers.map((w) => w.close()));
      clearTimeout(timer);
      await Promise.all(writes);
      await threads.close(); // the queue workers have closed, so no thread is busy: this only ends them
      await rq.close();
      outages.stop();
      await connection.quit().catch(() => connection.disconnect());
      log('stopped');
    })());

  await Promise.all(workers.map((w) => w.waitUntilReady()));
  opts.metrics?.setSources(runMetricsSources(rq, queues, () => threads.metrics()));
  return { queues, run: accepted.key, refused, stop };
}
