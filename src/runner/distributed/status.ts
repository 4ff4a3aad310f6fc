// `megapairs status` (each stage's units by state, and the worker processes connected to each
// queue, from BullMQ's getWorkers: the client names workers register with) and `megapairs retry-failed` (requeue the units
// that failed all their attempts; their parents, waiting on them, go on once they complete).
import type { Config } from '../../config/schema.ts';
import { connectRedis, describeRedis } from './connection.ts';
import { describeFailed, queueCounts } from './queue-state.ts';
import { keysOf } from '../../provenance/stage-keys.ts';
import { finalJobId } from './phases.ts';
import { readPublishedRun } from './run-identity.ts';
import { total, waiting } from './progress.ts';
import { CONTROL, RunQueues } from './queues.ts';
import { cleanRun, savedReports } from './retention.ts';

async function withQueues<T>(config: Config, fn: (rq: RunQueues) => Promise<T>): Promise<T> {
  const connection = await connectRedis(config, 'megapairs-cli');
  // Opening a queue writes nothing (status must not): these commands only read, or act on existing jobs.
  const rq = new RunQueues(config, connection, { readOnly: true });
  try {
    return await fn(rq);
  } finally {
    await rq.close();
    await connection.quit().catch(() => connection.disconnect());
  }
}

export function runStatus(config: Config): Promise<string> {
  return withQueues(config, async (rq) => {
    const rows = await queueCounts(rq);
    const published = await readPublishedRun(rq.connection, config);
    if (published) rq.run = { key: published.key, keys: keysOf(published.stages) };
    const finalState = published ? await rq.queue(CONTROL).getJobState(finalJobId(published.key)) : 'unknown';
    const failed = rows.reduce((a, r) => a + (r.counts.failed ?? 0), 0);
    const state =
      finalState === 'completed'
        ? 'complete'
        : rows.every((r) => total(r.counts) === 0)
          ? 'not enqueued (megapairs run --config <file>)'
          : failed
            ? `${failed} unit(s) failed (megapairs retry-failed --config <file>)`
            : 'running';
    const cols = ['waiting', 'active', 'completed', 'failed', 'delayed', 'blocked', 'workers'];
    const workers = new Map(await Promise.all(rq.all().map(async ({ short, queue }) => [short, await queue.getWorkers()] as const)));
    const lines = [
      `run ${config.run.name}${published ? ` (key ${published.key})` : ''} on ${describeRedis(config)}, prefix ${config.redis.prefix}: ${state}`,
      `${'stage'.padEnd(9)}${cols.map((c) => c.padStart(10)).join('')}`,
    ];
    for (const { short, counts: c } of rows) {
      const v = [waiting(c), c.active, c.completed, c.failed, c.delayed, c['waiting-children'], workers.get(short)!.length];
      lines.push(`${short.padEnd(9)}${v.map((x) => String(x ?? 0).padStart(10)).join('')}`);
    }
    lines.push('(delayed: waiting out a retry backoff; blocked: waiting for the units it depends on; workers: processes serving the queue)');
    lines.push('workers:');
    for (const [short, ws] of workers) {
      // A worker's client name ends in ":w:<host>-<pid>" (its BullMQ worker name).
      const names = ws.map((w) => w.rawname?.split(':w:')[1] ?? w.addr).sort();
      lines.push(`  ${short.padEnd(9)}${names.length ? names.join(', ') : '(none)'}`);
    }
    const reports = await savedReports(rq);
    if (reports.size) {
      lines.push('phases done (their completed jobs summed and trimmed):');
      for (const r of reports.values())
        lines.push(`  ${r.stage.padEnd(9)}${r.units} units (${r.skipped} already complete)  ${r.items} items  ${r.seconds.toFixed(1)}s`);
    }
    if (failed) lines.push('failed units:', await describeFailed(rq));
    return lines.join('\n');
  });
}

/**
 * Removes every Redis key of the run; refuses while units are running (their workers would
 * write results into a run that no longer exists) unless forced. Artifacts are not touched.
 */
export function cleanRunKeys(config: Config, force = false): Promise<number> {
  return withQueues(config, async (rq) => {
    const active = (await queueCounts(rq)).filter((r) => r.counts.active);
    if (active.length && !force) {
      throw new Error(
        `run ${config.run.name} has units running (${active.map((r) => `${r.short} ${r.counts.active}`).join(', ')}): stop its workers first, or pass --force`,
      );
    }
    return cleanRun(rq);
  });
}

/** Requeues every failed job of the run with fresh attempts; returns their ids. */
export function retryFailed(config: Config): Promise<string[]> {
  return withQueues(config, async (rq) => {
    const ids: string[] = [];
    for (const { queue } of rq.all()) {
      for (const job of await queue.getFailed(0, -1)) {
        if (!job) continue;
        await job.retry('failed', { resetAttemptsMade: true, resetAttemptsStarted: true });
        ids.push(job.id!);
      }
    }
    return ids;
  });
}
