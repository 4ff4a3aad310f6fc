// The process's Prometheus metrics, in one registry any module can import to count (the runner,
// the mining stage, the annotator). Each thread of a worker has its own copy of this module: the
// unit threads send theirs to the main thread (see src/runner/distributed/thread-pool.ts), which
// serves the sum on --metrics-port (server.ts).
import { AggregatorRegistry, Counter, Gauge, Histogram, Registry, type MetricObjectWithValues, type MetricValue } from 'prom-client';

export const registry = new Registry();

/** Units finished per stage, by outcome: `done` (ran), `skipped` (its artifact was complete), `failed` (an attempt failed). */
export const unitsTotal = new Counter({
  name: 'megapairs_units_total',
  help: 'Units finished, per stage and outcome (done, skipped, failed).',
  labelNames: ['stage', 'outcome'],
  registers: [registry],
});

/** Items carried through per stage (rate() of it is items/s). */
export const itemsTotal = new Counter({
  name: 'megapairs_items_total',
  help: 'Items processed per stage; rate() is items per second.',
  labelNames: ['stage'],
  registers: [registry],
});

/** Items a stage wrote to the failures ledger. */
export const itemFailuresTotal = new Counter({
  name: 'megapairs_item_failures_total',
  help: 'Items written to the failures ledger, per stage.',
  labelNames: ['stage'],
  registers: [registry],
});

export const unitSeconds = new Histogram({
  name: 'megapairs_unit_seconds',
  help: 'Wall time of a unit, per stage.',
  labelNames: ['stage'],
  buckets: [0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600],
  registers: [registry],
});

/** The metric KEDA scales workers on: waiting + delayed + prioritized jobs of a stage's queue. */
export const queueBacklog = new Gauge({
  name: 'megapairs_queue_backlog',
  help: 'Jobs waiting to run (waiting + delayed + prioritized), per run and stage.',
  labelNames: ['run', 'stage'],
  registers: [registry],
});

/** Every state's job count, per queue. */
export const queueJobs = new Gauge({
  name: 'megapairs_queue_jobs',
  help: 'Jobs per run, stage and state.',
  labelNames: ['run', 'stage', 'state'],
  registers: [registry],
});

export const indexShardLoads = new Counter({
  name: 'megapairs_index_shard_loads_total',
  help: 'Index shards loaded into memory, per space.',
  labelNames: ['space'],
  registers: [registry],
});
export const indexShardBytesRead = new Counter({
  name: 'megapairs_index_shard_bytes_read_total',
  help: 'Bytes of index shard files read, per space.',
  labelNames: ['space'],
  registers: [registry],
});

/** Requests sent to an annotation endpoint (`endpoint` is the config's name for it, e.g. mllm or llm). */
export const annotationRequests = new Counter({
  name: 'megapairs_annotation_requests_total',
  help: 'Requests sent to an annotation endpoint.',
  labelNames: ['endpoint'],
  registers: [registry],
});
export const annotationTokens = new Counter({
  name: 'megapairs_annotation_tokens_total',
  help: 'Tokens billed by an annotation endpoint, by kind (prompt, completion).',
  labelNames: ['endpoint', 'kind'],
  registers: [registry],
});
export const annotationErrors = new Counter({
  name: 'megapairs_annotation_errors_total',
  help: 'Failed annotation requests, per endpoint and kind of error.',
  labelNames: ['endpoint', 'kind'],
  registers: [registry],
});

export type MetricsSnapshot = MetricObjectWithValues<MetricValue<string>>[];

/** This thread's metrics, to send to the thread that serves them. */
export const snapshot = (): Promise<MetricsSnapshot> => registry.getMetricsAsJSON();

/** Prometheus text of this registry plus other threads' snapshots, summed label by label. */
export async function exposition(others: MetricsSnapshot[] = []): Promise<{ contentType: string; text: string }> {
  if (!others.length) return { contentType: registry.contentType, text: await registry.metrics() };
  const sum = AggregatorRegistry.aggregate([await snapshot(), ...others]);
  return { contentType: sum.contentType, text: await sum.metrics() };
}

/** An index shard load's bytes, counted per space (search and recall units load shards). */
export function countShardRead(space: string): (bytes: number) => void {
  return (bytes) => {
    indexShardLoads.inc({ space });
    indexShardBytesRead.inc({ space }, bytes);
  };
}
