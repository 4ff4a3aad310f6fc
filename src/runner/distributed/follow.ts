// `megapairs run` with the distributed runner: enqueue the run (its start barrier; the workers
// plan the rest) and follow it to the end from the queues' counts and event streams. Following is
// optional: the run advances without this process, and running it again (same config) only
// follows again.
import { setTimeout as sleep } from 'node:timers/promises';
import { connectRedis, describeRedis, watchOutages } from './connection.ts';
import { kindsServing } from './kinds.ts';
import { ensureStorageId } from '../../provenance/storage-identity.ts';
import { resolveRun } from '../../provenance/resolve-run.ts';
import { keysOf } from '../../provenance/stage-keys.ts';
import { enqueueRun, finalJobId, type RunResult } from './phases.ts';
import { START } from './phase-plan.ts';
import { publishRun, readPublishedRun, type PublishedRun } from './run-identity.ts';
import { runMetricsSources } from './queue-metrics.ts';
import { serveMetrics } from '../../metrics/server.ts';
import { COUNT_TYPES, pending, QueueProgress, type QueueCounts } from './progress.ts';
import { barrierJobId, CONTROL, RunQueues, unitIdOfJob, type UnitJobResult } from './queues.ts';
import { addUnit, type StageReport, type StageTally } from '../../core/stage-report.ts';
import { stageTally } from './reports.ts';
import { forgetFinishedRun, savedReports } from './retention.ts';
import { missingWork } from '../../provenance/dry-run.ts';
import type { StageContext } from '../../core/stage.ts';
import { recordUnitFailure } from '../unit-failure.ts';

export class RunFailedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RunFailedError';
  }
}

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

type RunQueue = ReturnType<RunQueues['all']>[number];

export async function queueCounts(rq: RunQueues, queues: RunQueue[] = rq.all()): Promise<QueueCounts[]> {
  return Promise.all(queues.map(async ({ short, queue }) => ({ short, counts: await queue.getJobCounts(...COUNT_TYPES) })));
}

/** The failed units, with why; "" when none. */
export async function describeFailed(rq: RunQueues, limit = 20): Promise<string> {
  const lines: string[] = [];
  for (const { queue } of rq.all()) {
    for (const job of await queue.getFailed(0, limit - 1)) {
      if (job) lines.push(`  ${job.id} (${job.attemptsMade} attempts${job.stalledCounter ? `, ${job.stalledCounter} stalls` : ''}): ${job.failedReason}`);
    }
  }
  return lines.slice(0, limit).join('\n');
}

/**
 * Ledger entries for failed units that have none: the worker that failed a unit writes one, but
 * one whose `work` is not the run's cannot (a refusal), so the follower, with the run's config,
 * makes sure every failed unit is in the run's ledger.
 */
async function ledgerFailedUnits(rq: RunQueues, ctx: StageContext): Promise<void> {
  const work = ctx.work;
  for (const { short, queue } of rq.all()) {
    if (short === CONTROL) continue;
    for (const job of await queue.getFailed(0, -1)) {
      if (!job) continue;
      const unit = unitIdOfJob(job, short);
      if (await work.exists(ctx.layout.ledgerPart(short, `${unit}.unit`))) continue;
      const reason = job.stalledCounter > rq.config.runner.max_stalls ? 'unit_stalled' : 'unit_failed';
      await recordUnitFailure(ctx, short, unit, `${rq.name(short)} job ${job.id} (seen failed by megapairs run)`, reason, job.failedReason);
    }
  }
}

/**
 * What moved since the last call. BullMQ appends every change of a job's state to its queue's
 * `events` stream, so one XREAD from the newest ids seen names the queues that moved and brings
 * each finished unit's result: following a run whose units take minutes then costs a command or
 * two per poll, where reading every queue's counts costs about a hundred. Stream ids are Redis
 * times in ms, which place units starting and finishing between polls.
 */
class QueueEvents {
  private readonly seen = new Map<string, string>();
  constructor(private readonly rq: RunQueues) {}

  /** Starts from now: what came before is read from the jobs themselves. */
  async start(): Promise<void> {
    this.seen.clear();
    for (const { short, queue } of this.rq.all()) {
      const [newest] = await this.rq.connection.xrevrange(queue.keys.events, '+', '-', 'COUNT', 1);
      this.seen.set(short, newest?.[0] ?? '0');
    }
  }

  /** The queues with events since the last call, and each started or finished unit in them. */
  async next(onUnit: (short: string, event: 'active' | 'completed', atMs: number, result?: UnitJobResult) => void): Promise<Set<string>> {
    const queues = this.rq.all();
    const moved = new Set<string>();
    for (;;) {
      const reply = (await this.rq.connection.xread(
        'COUNT',
        1000,
        'STREAMS',
        ...queues.map((q) => q.queue.keys.events),
        ...queues.map((q) => this.seen.get(q.short) ?? '0'),
      )) as Array<[string, Array<[string, string[]]>]> | null;
      if (!reply) return moved;
      let full = false;
      for (const [stream, entries] of reply) {
        const short = queues.find((q) => q.queue.keys.events === stream)!.short;
        moved.add(short);
        for (const [id, fields] of entries) {
          const f: Record<string, string> = {};
          for (let i = 0; i < fields.length; i += 2) f[fields[i]] = fields[i + 1];
          const at = Number(id.split('-')[0]);
          if (f.event === 'active') onUnit(short, 'active', at);
          else if (f.event === 'completed') onUnit(short, 'completed', at, f.returnvalue ? (JSON.parse(f.returnvalue) as UnitJobResult) : undefined);
        }
        this.seen.set(short, entries[entries.length - 1][0]);
        full ||= entries.length === 1000;
      }
      if (!full) return moved;
    }
  }
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
  const FINAL = finalJobId(run.key);
  const startKey = rq.queue(CONTROL).toKey(barrierJobId(START, run.key));
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
  let stopWatching = () => {};
  try {
    await publishRun(connection, config, run);
    await enqueueRun(rq, run.key);
    write(`run ${config.run.name} (key ${run.key}) enqueued on ${describeRedis(config)} (prefix ${config.redis.prefix}); following it`);
    let progress = new QueueProgress(write, tty);
    const events = new QueueEvents(rq);
    const tallies = new Map<string, StageTally>();
    const counts = new Map<string, QueueCounts>();
    let reports = new Map<string, StageReport>();
    /** Reads what is in Redis already: every queue's counts, the reports of the phases done, each other stage's finished units. */
    const catchUp = async () => {
      await events.start();
      for (const row of await queueCounts(rq)) counts.set(row.short, row);
      reports = await savedReports(rq);
      for (const { short } of rq.all()) if (short !== CONTROL && !reports.has(short)) tallies.set(short, await stageTally(rq, short, true));
    };
    await catchUp();
    let changed = new Set(counts.keys());
    let quietSince = Date.now();
    // While Redis is down nothing moves and no worker is seen: say so, and once it is back give
    // the workers a quiet spell to reconnect before asking whether any serves the waiting work.
    const outages = watchOutages(
      connection,
      config,
      (l) => progress.say(l),
      () => (quietSince = Date.now()),
    );
    stopWatching = () => outages.stop();
    let stuckPolls = 0;
    let warnedFor = '';
    for (;;) {
      // Another `run` of this name with a changed config took over: this run's jobs are no longer
      // served, so it would never finish (and must not be enqueued again below).
      const published = await readPublishedRun(connection, config);
      if (published && published.key !== run.key) {
        progress.end();
        throw new RunFailedError(
          `run ${config.run.name} (key ${run.key}) was superseded: another \`megapairs run\` started it with a changed config (key ${published.key}), ` +
            `and workers serve only that one. Follow it with its own config, or run \`megapairs run --config ${cfg}\` again to make this config current.`,
        );
      }
      // The final barrier's state before the counts, so the last progress lines show every stage complete.
      const complete = changed.has(CONTROL) && (await rq.queue(CONTROL).getJobState(FINAL)) === 'completed';
      // A barrier ran: a phase may be done, its jobs and event streams trimmed before this process
      // read their last events, so every queue is counted again.
      if (changed.has(CONTROL)) {
        reports = await savedReports(rq);
        changed = new Set(counts.keys());
      }
      for (const row of await queueCounts(
        rq,
        rq.all().filter((q) => changed.has(q.short)),
      ))
        counts.set(row.short, row);
      const rows = [...counts.values()];
      progress.update(
        rows.map((r) => ({ ...r, tally: tallies.get(r.short) })),
        reports,
      );
      if (complete) {
        progress.end();
        return (await rq.queue(CONTROL).getJob(FINAL))!.returnvalue as RunResult;
      }
      const waitingWork = rows.reduce((a, r) => a + pending(r.counts), 0);
      const failed = rows.reduce((a, r) => a + (r.counts.failed ?? 0), 0);
      // Counts are read queue by queue, so a job moving between queues can hide for one poll:
      // call the run stuck only when two polls in a row see failures and nothing left to run.
      stuckPolls = waitingWork === 0 && failed > 0 ? stuckPolls + 1 : 0;
      if (stuckPolls >= 2) {
        progress.end();
        await ledgerFailedUnits(rq, ctx);
        throw new RunFailedError(
          `${failed} unit(s) failed for good, and the run cannot finish without them:\n${await describeFailed(rq)}\n` +
            `they are in the failures ledger too. Fix the cause, then \`megapairs retry-failed --config ${cfg}\` and \`megapairs run --config ${cfg}\` to follow the run again.`,
        );
      }
      if (!(await connection.exists(startKey))) {
        // The run's keys are gone (a Redis restarted without AOF, a flush, an evicting policy):
        // nothing would ever move again. Artifacts are safe, so enqueue it again; planning skips
        // every unit whose artifact is complete.
        progress.say(
          `Redis at ${describeRedis(config)} no longer holds run ${config.run.name} (its keys are gone: a restart without AOF, a flush, or eviction); ` +
            'enqueueing it again: units whose artifacts are complete are skipped',
        );
        await publishRun(connection, config, run);
        await enqueueRun(rq, run.key);
        progress = new QueueProgress(write, tty);
        await catchUp();
        changed = new Set(counts.keys());
        continue;
      }
      if (changed.size) quietSince = Date.now();
      if (Date.now() - quietSince > (opts.quietMs ?? 15_000)) {
        // Nothing moved for a while: say so if work waits on a queue that no worker serves. Asked
        // once per quiet spell (15 s), as each ask is a CLIENT LIST.
        quietSince = Date.now();
        const unserved: string[] = [];
        for (const r of rows)
          if (
            pending(r.counts) > 0 &&
            (await rq
              .queue(r.short)
              .getWorkersCount()
              .catch(() => 1)) === 0
          )
            unserved.push(r.short);
        if (unserved.length && unserved.join() !== warnedFor) {
          warnedFor = unserved.join();
          for (const q of unserved) {
            const [kind, ...others] = kindsServing(q);
            progress.say(`no worker serves ${q}: start one (\`megapairs worker ${kind} --config ${cfg}\`; also served by: ${others.join(', ')})`);
          }
        }
      }
      await sleep(opts.pollMs ?? 500);
      changed = await events.next((short, event, at, result) => {
        const t = tallies.get(short);
        if (!t) return;
        if (event === 'active') t.first = t.first ? Math.min(t.first, at) : at;
        else addUnit(t, result, undefined, at);
      });
    }
  } finally {
    stopWatching();
    await metrics?.close();
    await rq.close();
    await connection.quit().catch(() => connection.disconnect());
  }
}
