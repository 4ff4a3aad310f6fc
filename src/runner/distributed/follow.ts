// `megapairs run` with the distributed runner: enqueue the run (its start barrier; the workers
// plan the rest) and follow it to the end from the queues' counts. Following is optional: the run
// advances without this process, and running it again (same config) only follows again.
import { setTimeout as sleep } from 'node:timers/promises';
import type { Config } from '../../config/schema.ts';
import { connectRedis, describeRedis } from './connection.ts';
import { ensureStorageId } from '../../provenance/storage-identity.ts';
import { resolveRun } from '../../provenance/resolve-run.ts';
import { createContext } from '../context.ts';
import { enqueueRun, finalJobId, type RunResult } from './phases.ts';
import { publishRun, type PublishedRun } from './run-identity.ts';
import { COUNT_TYPES, pending, QueueProgress, type QueueCounts } from './progress.ts';
import { CONTROL, RunQueues } from './queues.ts';

export class RunFailedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RunFailedError';
  }
}

export interface FollowOptions {
  /** Progress lines (stderr by default). */
  write?: (line: string) => void;
  pollMs?: number;
  /** The config file, for the commands the messages suggest. */
  configFile?: string;
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
      if (job) lines.push(`  ${job.id} (${job.attemptsMade} attempts): ${job.failedReason}`);
    }
  }
  return lines.slice(0, limit).join('\n');
}

/**
 * Which queues moved since the last call. BullMQ appends every change of a job's state to its
 * queue's `events` stream, so one XREAD from the newest ids seen names the queues that moved:
 * following a run whose units take minutes then costs one command per poll, where reading every
 * queue's counts costs about a hundred (a counts script per queue, ten commands inside each).
 */
class QueueChanges {
  private readonly seen = new Map<string, string>();
  private started = false;
  constructor(private readonly rq: RunQueues) {}

  /** The queues with events since the last call (every queue, the first time). */
  async next(): Promise<RunQueue[]> {
    const queues = this.rq.all();
    let changed = queues;
    if (this.started) {
      const streams = queues.map(({ queue }) => queue.keys.events);
      const reply = await this.rq.connection.xread('COUNT', 1, 'STREAMS', ...streams, ...queues.map(({ short }) => this.seen.get(short) ?? '0'));
      const moved = new Set(reply?.map(([stream]) => stream));
      changed = queues.filter(({ queue }) => moved.has(queue.keys.events));
    }
    this.started = true;
    // Mark them seen up to their newest event before the caller reads them: whatever happens
    // from here on is named by the next call.
    await Promise.all(
      changed.map(async ({ short, queue }) => {
        const [newest] = await this.rq.connection.xrevrange(queue.keys.events, '+', '-', 'COUNT', 1);
        if (newest) this.seen.set(short, newest[0]);
      }),
    );
    return changed;
  }
}

/** The run this config describes: its keys resolved, its record written, its storage marked. */
async function startRun(config: Config): Promise<PublishedRun> {
  const ctx = createContext(config);
  const resolved = await resolveRun(ctx, { record: true });
  const storage = { work: await ensureStorageId(ctx.work), output: await ensureStorageId(ctx.output) };
  return { run: config.run.name, key: resolved.key, stages: resolved.provenance, storage, previous: resolved.previous?.stages, publishedAt: new Date().toISOString() };
}

export async function runDistributed(config: Config, opts: FollowOptions = {}): Promise<RunResult> {
  const write = opts.write ?? ((line: string) => process.stderr.write(line + '\n'));
  const cfg = opts.configFile ?? '<file>';
  const run = await startRun(config);
  const connection = await connectRedis(config, 'megapairs-run');
  const rq = new RunQueues(config, connection);
  const FINAL = finalJobId(run.key);
  try {
    await publishRun(connection, config, run);
    await enqueueRun(rq, run.key);
    write(`run ${config.run.name} (key ${run.key}) enqueued on ${describeRedis(config)} (prefix ${config.redis.prefix}); following it`);
    const progress = new QueueProgress(write);
    const changes = new QueueChanges(rq);
    const counts = new Map<string, QueueCounts>(); // the first poll reads every queue, in order
    let quietSince = Date.now();
    let stuckPolls = 0;
    let warnedFor = '';
    for (;;) {
      const changed = await changes.next();
      // The final barrier's state before the counts, so the last progress lines show every stage complete.
      const complete = changed.some((q) => q.short === CONTROL) && (await rq.queue(CONTROL).getJobState(FINAL)) === 'completed';
      for (const row of await queueCounts(rq, changed)) counts.set(row.short, row);
      const rows = [...counts.values()];
      progress.update(rows);
      if (complete) return (await rq.queue(CONTROL).getJob(FINAL))!.returnvalue as RunResult;
      const waitingWork = rows.reduce((a, r) => a + pending(r.counts), 0);
      const failed = rows.reduce((a, r) => a + (r.counts.failed ?? 0), 0);
      // Counts are read queue by queue, so a job moving between queues can hide for one poll:
      // call the run stuck only when two polls in a row see failures and nothing left to run.
      stuckPolls = waitingWork === 0 && failed > 0 ? stuckPolls + 1 : 0;
      if (stuckPolls >= 2) {
        throw new RunFailedError(
          `${failed} unit(s) failed after all their attempts, and the run cannot finish without them:\n${await describeFailed(rq)}\n` +
            `they are in the failures ledger too. Fix the cause, then \`megapairs retry-failed --config ${cfg}\` and \`megapairs run --config ${cfg}\` to follow the run again.`,
        );
      }
      if (changed.length) quietSince = Date.now();
      if (Date.now() - quietSince > 15_000) {
        // Nothing moved for a while: say so if work waits on a queue that no worker serves. Asked
        // once per quiet spell of 15 s, as each ask is a CLIENT LIST.
        quietSince = Date.now();
        const unserved: string[] = [];
        for (const r of rows) if (pending(r.counts) > 0 && (await rq.queue(r.short).getWorkersCount().catch(() => 1)) === 0) unserved.push(r.short);
        if (unserved.length && unserved.join() !== warnedFor) {
          warnedFor = unserved.join();
          write(`no worker serves ${unserved.join(', ')}: start one (\`megapairs worker all|cpu|gpu|annotate --config ${cfg}\`)`);
        }
      }
      await sleep(opts.pollMs ?? 500);
    }
  } finally {
    await rq.close();
    await connection.quit().catch(() => connection.disconnect());
  }
}
