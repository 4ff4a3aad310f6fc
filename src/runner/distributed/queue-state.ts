// What a run's queues hold, read for `megapairs run` (following a run) and `megapairs status`:
// each queue's job counts, and the units that failed for good with why.
import { COUNT_TYPES, type QueueCounts } from './progress.ts';
import type { RunQueues } from './queues.ts';

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
