// Every job carries a fingerprint of the config sections that decide a run's artifacts, so a
// worker started with a different config (another mine.k, another model) refuses the job instead
// of writing artifacts that disagree with the rest of the run. Settings that only change how a
// process runs (runner, redis, s3 endpoint, memory budget, request concurrency) may differ.
import { createHash } from 'node:crypto';
import type { Config } from '../../config/schema.ts';

export type ConfigFingerprint = Record<string, string>;

const hash = (v: unknown) => createHash('sha256').update(JSON.stringify(v)).digest('hex').slice(0, 16);

export function configFingerprint(config: Config): ConfigFingerprint {
  const { memory_budget_mb: _budget, ...index } = config.index;
  const openai = config.annotate.openai && { ...config.annotate.openai, concurrency: undefined, timeout_ms: undefined };
  return {
    'run.seed': hash(config.run.seed),
    input: hash(config.input),
    work: hash(config.work),
    output: hash(config.output),
    encoders: hash(config.encoders),
    index: hash(index),
    mine: hash(config.mine),
    annotate: hash({ ...config.annotate, openai }),
  };
}

/** The sections where a job's fingerprint and this worker's differ (none for jobs without one). */
export function fingerprintDifferences(job: ConfigFingerprint | undefined, own: ConfigFingerprint): string[] {
  if (!job) return [];
  return Object.keys({ ...job, ...own }).filter((k) => job[k] !== own[k]);
}
