// Following an enqueued run to its end (`megapairs run`, follow.ts): a poll loop, each concern of
// which is one method below, in the order each poll asks them: was the run superseded, what do the
// queues and barrier reports say now (and did the final barrier complete), is the run stuck on
// failed units, did Redis lose the run's keys, does waiting work have a worker, and what moved
// since (the queues' event streams).
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import { describeRedis, watchOutages } from './connection.ts';
import { kindsServing } from './kinds.ts';
import { enqueueRun, finalJobId, type RunResult } from './phases.ts';
import { START } from './phase-plan.ts';
import { publishRun, readPublishedRun, type PublishedRun } from './run-identity.ts';
import { pending, QueueProgress, type QueueCounts } from './progress.ts';
import { barrierJobId, CONTROL, type RunQueues, unitIdOfJob } from './queues.ts';
import { addUnit, type StageReport, type StageTally } from '../../core/stage-report.ts';
import { stageTally } from './reports.ts';
import { savedReports } from './retention.ts';
import type { StageContext } from '../../core/stage.ts';
import { recordUnitFailure } from '../unit-failure.ts';
import { QueueEvents } from './queue-events.ts';
import { describeFailed, queueCounts } from './queue-state.ts';

export class RunFailedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RunFailedError';
  }
}

/** How the follower reports and paces itself (follow.ts resolves these from its FollowOptions). */
export interface Following {
  /** Progress lines. */
  write: (line: string) => void;
  /** Where live bars go, when it is a terminal. */
  tty?: NodeJS.WriteStream;
  /** The config file, for the commands the messages suggest. */
  cfg: string;
  pollMs: number;
  /** How long nothing may move before the follower asks whether any worker serves the waiting work. */
  quietMs: number;
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

/** Follows one enqueued run; follow.ts makes it, and releases Redis and the metrics server after. */
export class RunFollower {
  private readonly connection: Redis;
  private readonly finalJob: string;
  /** The run's start barrier's key: gone when Redis lost the run's keys. */
  private readonly startKey: string;
  private progress: QueueProgress;
  private readonly events: QueueEvents;
  private readonly tallies = new Map<string, StageTally>();
  private readonly counts = new Map<string, QueueCounts>();
  private reports = new Map<string, StageReport>();
  /** The queues that moved since the last poll. */
  private changed = new Set<string>();
  private quietSince = Date.now();
  private stuckPolls = 0;
  private warnedFor = '';
  private outages?: { stop(): void };

  constructor(
    private readonly ctx: StageContext,
    private readonly rq: RunQueues,
    private readonly run: PublishedRun,
    private readonly opts: Following,
  ) {
    this.connection = rq.connection;
    this.finalJob = finalJobId(run.key);
    this.startKey = rq.queue(CONTROL).toKey(barrierJobId(START, run.key));
    this.progress = new QueueProgress(opts.write, opts.tty);
    this.events = new QueueEvents(rq);
  }

  /** Publishes and enqueues the run, then follows it: its result, or a RunFailedError. */
  async follow(): Promise<RunResult> {
    const config = this.ctx.config;
    await this.enqueue();
    this.opts.write(`run ${config.run.name} (key ${this.run.key}) enqueued on ${describeRedis(config)} (prefix ${config.redis.prefix}); following it`);
    await this.catchUp();
    this.quietSince = Date.now();
    // While Redis is down nothing moves and no worker is seen: say so, and once it is back give
    // the workers a quiet spell to reconnect before asking whether any serves the waiting work.
    this.outages = watchOutages(
      this.connection,
      config,
      (l) => this.progress.say(l),
      () => (this.quietSince = Date.now()),
    );
    for (;;) {
      await this.failIfSuperseded();
      const { complete, rows } = await this.readQueues();
      if (complete) return this.result();
      await this.failIfStuck(rows);
      if (!(await this.connection.exists(this.startKey))) {
        await this.enqueueAgain();
        continue;
      }
      await this.warnIfUnserved(rows);
      await sleep(this.opts.pollMs);
      await this.readEvents();
    }
  }

  /** Stops watching Redis for outages. */
  stop(): void {
    this.outages?.stop();
  }

  private async enqueue(): Promise<void> {
    await publishRun(this.connection, this.ctx.config, this.run);
    await enqueueRun(this.rq, this.run.key);
  }

  /**
   * Reads what is in Redis already: every queue's counts, the reports of the phases done, each
   * other stage's finished units; every queue then counts as moved.
   */
  private async catchUp(): Promise<void> {
    const rq = this.rq;
    await this.events.start();
    for (const row of await queueCounts(rq)) this.counts.set(row.short, row);
    this.reports = await savedReports(rq);
    for (const { short } of rq.all()) if (short !== CONTROL && !this.reports.has(short)) this.tallies.set(short, await stageTally(rq, short, true));
    this.changed = new Set(this.counts.keys());
  }

  private async failIfSuperseded(): Promise<void> {
    // Another `run` of this name with a changed config took over: this run's jobs are no longer
    // served, so it would never finish (and must not be enqueued again below).
    const config = this.ctx.config;
    const published = await readPublishedRun(this.connection, config);
    if (published && published.key !== this.run.key) {
      this.progress.end();
      throw new RunFailedError(
        `run ${config.run.name} (key ${this.run.key}) was superseded: another \`megapairs run\` started it with a changed config (key ${published.key}), ` +
          `and workers serve only that one. Follow it with its own config, or run \`megapairs run --config ${this.opts.cfg}\` again to make this config current.`,
      );
    }
  }

  /** Counts the queues that moved and shows the progress; `complete`: the final barrier has completed. */
  private async readQueues(): Promise<{ complete: boolean; rows: QueueCounts[] }> {
    const rq = this.rq;
    // The final barrier's state before the counts, so the last progress lines show every stage complete.
    const complete = this.changed.has(CONTROL) && (await rq.queue(CONTROL).getJobState(this.finalJob)) === 'completed';
    // A barrier ran: a phase may be done, its jobs and event streams trimmed before this process
    // read their last events, so every queue is counted again.
    if (this.changed.has(CONTROL)) {
      this.reports = await savedReports(rq);
      this.changed = new Set(this.counts.keys());
    }
    for (const row of await queueCounts(
      rq,
      rq.all().filter((q) => this.changed.has(q.short)),
    ))
      this.counts.set(row.short, row);
    const rows = [...this.counts.values()];
    this.progress.update(
      rows.map((r) => ({ ...r, tally: this.tallies.get(r.short) })),
      this.reports,
    );
    return { complete, rows };
  }

  /** The final barrier's result: the run's. */
  private async result(): Promise<RunResult> {
    this.progress.end();
    return (await this.rq.queue(CONTROL).getJob(this.finalJob))!.returnvalue as RunResult;
  }

  private async failIfStuck(rows: QueueCounts[]): Promise<void> {
    const waitingWork = rows.reduce((a, r) => a + pending(r.counts), 0);
    const failed = rows.reduce((a, r) => a + (r.counts.failed ?? 0), 0);
    // Counts are read queue by queue, so a job moving between queues can hide for one poll:
    // call the run stuck only when two polls in a row see failures and nothing left to run.
    this.stuckPolls = waitingWork === 0 && failed > 0 ? this.stuckPolls + 1 : 0;
    if (this.stuckPolls >= 2) {
      const cfg = this.opts.cfg;
      this.progress.end();
      await ledgerFailedUnits(this.rq, this.ctx);
      throw new RunFailedError(
        `${failed} unit(s) failed for good, and the run cannot finish without them:\n${await describeFailed(this.rq)}\n` +
          `they are in the failures ledger too. Fix the cause, then \`megapairs retry-failed --config ${cfg}\` and \`megapairs run --config ${cfg}\` to follow the run again.`,
      );
    }
  }

  /**
   * The run's keys are gone (a Redis restarted without AOF, a flush, an evicting policy): nothing
   * would ever move again. Artifacts are safe, so enqueue it again; planning skips every unit
   * whose artifact is complete.
   */
  private async enqueueAgain(): Promise<void> {
    const config = this.ctx.config;
    this.progress.say(
      `Redis at ${describeRedis(config)} no longer holds run ${config.run.name} (its keys are gone: a restart without AOF, a flush, or eviction); ` +
        'enqueueing it again: units whose artifacts are complete are skipped',
    );
    await this.enqueue();
    this.progress = new QueueProgress(this.opts.write, this.opts.tty);
    await this.catchUp();
  }

  private async warnIfUnserved(rows: QueueCounts[]): Promise<void> {
    if (this.changed.size) this.quietSince = Date.now();
    if (Date.now() - this.quietSince > this.opts.quietMs) {
      // Nothing moved for a while: say so if work waits on a queue that no worker serves. Asked
      // once per quiet spell (15 s), as each ask is a CLIENT LIST.
      this.quietSince = Date.now();
      const unserved = await this.unservedQueues(rows);
      if (unserved.length && unserved.join() !== this.warnedFor) {
        this.warnedFor = unserved.join();
        for (const q of unserved) {
          const [kind, ...others] = kindsServing(q);
          this.progress.say(`no worker serves ${q}: start one (\`megapairs worker ${kind} --config ${this.opts.cfg}\`; also served by: ${others.join(', ')})`);
        }
      }
    }
  }

  /** The queues with work waiting and no worker connected. */
  private async unservedQueues(rows: QueueCounts[]): Promise<string[]> {
    const unserved: string[] = [];
    for (const r of rows)
      if (
        pending(r.counts) > 0 &&
        (await this.rq
          .queue(r.short)
          .getWorkersCount()
          .catch(() => 1)) === 0
      )
        unserved.push(r.short);
    return unserved;
  }

  /** The queues that moved since the last poll, and the times and results of the units in them. */
  private async readEvents(): Promise<void> {
    this.changed = await this.events.next((short, event, at, result) => {
      const t = this.tallies.get(short);
      if (!t) return;
      if (event === 'active') t.first = t.first ? Math.min(t.first, at) : at;
      else addUnit(t, result, undefined, at);
    });
  }
}
