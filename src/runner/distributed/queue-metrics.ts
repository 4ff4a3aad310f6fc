// Queue depths as metrics, read from Redis at each scrape: `megapairs_queue_backlog{run,stage}`
// (waiting + delayed + prioritized: what KEDA scales workers on) and every state's count.
import { queueBacklog, queueJobs } from '../../metrics/registry.ts';
import type { MetricsSources } from '../../metrics/server.ts';
import type { MetricsSnapshot } from '../../metrics/registry.ts';
import { COUNT_TYPES } from './progress.ts';
import type { RunQueues } from './queues.ts';

export async function readQueueDepths(rq: RunQueues, shorts: readonly string[]): Promise<void> {
  const run = rq.config.run.name;
  await Promise.all(
    shorts.map(async (stage) => {
      const c = await rq.queue(stage).getJobCounts(...COUNT_TYPES);
      queueBacklog.set({ run, stage }, (c.wait ?? 0) + (c.delayed ?? 0) + (c.prioritized ?? 0));
      for (const state of COUNT_TYPES) queueJobs.set({ run, stage, state }, c[state] ?? 0);
    }),
  );
}

/** What a scrape reads: the process's metrics with the depths of the given queues. */
export const runMetricsSources = (rq: RunQueues, shorts: readonly string[], others?: () => MetricsSnapshot[]): MetricsSources => ({
  refresh: () => readQueueDepths(rq, shorts),
  others,
});
