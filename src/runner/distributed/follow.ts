// `megapairs run` with the distributed runner: enqueue the run (its start barrier; the workers
// plan the rest) and follow it to the end from the queues' counts and event streams (the follower:
// run-follower.ts). Following is optional: the run advances without this process, and running it
// again (same config) only follows again.
import { connectRedis } from './connection.ts';
import { ensureStorageId } from '../../provenance/storage-identity.ts';
import { resolveRun } from '../../provenance/resolve-run.ts';
import { keysOf } from '../../provenance/stage-keys.ts';
import { finalJobId, type RunResult } from './phases.ts';
import { readPublishedRun, type PublishedRun } from './run-identity.ts';
import { runMetricsSources } from './queue-metrics.ts';
import { serveMetrics } from '../../metrics/server.ts';
import { CONTROL, RunQueues } from './queues.ts';
import { forgetFinishedRun } from './retention.ts';
import { missingWork } from '../../provenance/dry-run.ts';
import type { StageContext } from '../../core/stage.ts';
import { RunFollower } from './run-follower.ts';

export { RunFailedError } from './run-follower.ts';

export interface FollowOptions {
  /** Progress lines (stderr by default). */
  write?: (line: string) => void;
  /** Where live bars go when it is a terminal (stderr by default); without one, plain lines. */
  tty?: NodeJS.WriteStream;
  pollMs?: number;
  /** How long nothing may move before the follower asks whether any worker serves the waiting work. */
  quietMs?: number;
  /** The config file, for the commands the messages suggest. */
  configFile?: string;
  /** Serve Prometheus metrics (every queue's depth) on this port (0: any free one) at /metrics. */
  metricsPort?: number;
  /** The address metrics listen on (default 127.0.0.1). */
  metricsHost?: string;
  /** Told the port metrics are served on. */
  onMetrics?: (port: number) => void;
}

/** The run this config describes: its keys resolved, its record written, its storage marked. */
async function startRun(ctx: StageContext): Promise<PublishedRun> {
  const config = ctx.config;
  const resolved = await resolveRun(ctx, { record: true });
  const storage = { work: await ensureStorageId(ctx.work), output: await ensureStorageId(ctx.output) };
  const run = {
    run: config.run.name,
    key: resolved.key,
    stages: resolved.provenance,
    storage,
    previous: resolved.previous?.stages,
    publishedAt: new Date().toISOString(),
  };
  return run;
}

/**
 * Whether Redis's record of the run is still true of storage. A run Redis holds as finished is
 * checked against its artifacts, as the local runner checks every unit: when one is missing
 * (deleted, or replaced by another config's output since), the run is forgotten in Redis and
 * enqueued again, so it rebuilds what is missing. A run in progress keeps what it was published
 * with (its start, and the run before it, which its reports explain themselves against).
 */
async function reconcile(rq: RunQueues, ctx: StageContext, run: PublishedRun, write: (line: string) => void): Promise<void> {
  const finished = (await rq.queue(CONTROL).getJobState(finalJobId(run.key))) === 'completed';
  const missing = finished ? await missingWork(ctx) : undefined;
  if (missing) {
    write(
      `run ${rq.config.run.name} (key ${run.key}) finished before, but storage lacks ${missing.missing} of ${missing.units} ${missing.stage} unit(s)' artifacts ` +
        "(deleted, or replaced by another config's since): running it again; complete units are reused",
    );
    await forgetFinishedRun(rq, run.key);
    return;
  }
  const published = await readPublishedRun(rq.connection, rq.config);
  if (published?.key === run.key) Object.assign(run, { previous: published.previous, publishedAt: published.publishedAt });
}

/** Prometheus metrics (every queue's depth), when asked for. */
async function startMetrics(rq: RunQueues, opts: FollowOptions) {
  const metrics =
    opts.metricsPort === undefined
      ? undefined
      : await serveMetrics(
          opts.metricsPort,
          runMetricsSources(
            rq,
            rq.all().map((q) => q.short),
          ),
          opts.metricsHost,
        );
  if (metrics) opts.onMetrics?.(metrics.port);
  return metrics;
}

/** Starts or resumes the run of the context's config and follows it to its end. */
export async function runDistributed(ctx: StageContext, opts: FollowOptions = {}): Promise<RunResult> {
  const config = ctx.config;
  const write = opts.write ?? ((line: string) => process.stderr.write(line + '\n'));
  // Live bars on a terminal; plain lines to a given writer or to a log.
  const tty = opts.tty ?? (!opts.write && process.stderr.isTTY ? process.stderr : undefined);
  const cfg = opts.configFile ?? '<file>';
  const run = await startRun(ctx);
  const connection = await connectRedis(config, 'megapairs-run');
  const rq = new RunQueues(config, connection);
  rq.run = { key: run.key, keys: keysOf(run.stages) };
  await reconcile(rq, ctx, run, write).catch(async (err: Error) => {
    await rq.close();
    connection.disconnect();
    throw err;
  });
  const follower = new RunFollower(ctx, rq, run, { write, tty, cfg, pollMs: opts.pollMs ?? 500, quietMs: opts.quietMs ?? 15_000 });
  const metrics = await startMetrics(rq, opts);
  try {
    return await follower.follow();
  } finally {
    follower.stop();
    await metrics?.close();
    await rq.close();
    await connection.quit().catch(() => connection.disconnect());
  }
}
