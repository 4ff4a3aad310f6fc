// `megapairs status` (each stage's units by state) and `megapairs retry-failed` (requeue the units
// that failed all their attempts; their parents, waiting on them, go on once they complete).
import type { Config } from '../../config/schema.ts';
import { connectRedis, describeRedis } from './connection.ts';
import { describeFailed, queueCounts } from './follow.ts';
import { finalJobId } from './phases.ts';
import { readPublishedRun } from './run-identity.ts';
import { total, waiting } from './progress.ts';
import { CONTROL, RunQueues } from './queues.ts';

async function withQueues<T>(config: Config, fn: (rq: RunQueues) => Promise<T>): Promise<T> {
  const connection = await connectRedis(config, 'megapairs-cli');
  const rq = new RunQueues(config, connection);
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
    const finalState = published ? await rq.queue(CONTROL).getJobState(finalJobId(published.key)) : 'unknown';
    const failed = rows.reduce((a, r) => a + (r.counts.failed ?? 0), 0);
    const state =
      finalState === 'completed' ? 'complete'
      : rows.every((r) => total(r.counts) === 0) ? 'not enqueued (megapairs run --config <file>)'
      : failed ? `${failed} unit(s) failed (megapairs retry-failed --config <file>)`
      : 'running';
    const cols = ['waiting', 'active', 'completed', 'failed', 'delayed', 'blocked'];
    const lines = [
      `run ${config.run.name}${published ? ` (key ${published.key})` : ''} on ${describeRedis(config)}, prefix ${config.redis.prefix}: ${state}`,
      `${'stage'.padEnd(9)}${cols.map((c) => c.padStart(10)).join('')}`,
    ];
    for (const { short, counts: c } of rows) {
      const v = [waiting(c), c.active, c.completed, c.failed, c.delayed, c['waiting-children']];
      lines.push(`${short.padEnd(9)}${v.map((x) => String(x ?? 0).padStart(10)).join('')}`);
    }
    lines.push('(delayed: waiting out a retry backoff; blocked: waiting for the units it depends on)');
    if (failed) lines.push('failed units:', await describeFailed(rq));
    return lines.join('\n');
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
