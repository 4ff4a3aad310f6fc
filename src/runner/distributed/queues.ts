// The run's queues in Redis: one per stage plus `control`, whose barrier jobs advance the run from
// phase to phase. Names, job ids and job options live here so that every process (workers, `run`,
// `status`, `retry-failed`) agrees on them. Job ids are deterministic, so enqueueing the same run
// twice adds nothing.
import { FlowProducer, Queue, type Job, type JobsOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Config } from '../../config/schema.ts';
import { pipelineStages } from '../../pipeline.ts';
import type { StageKeys } from '../../core/keys.ts';
import type { UnitOutcome } from '../../core/stage-report.ts';

export const CONTROL = 'control';

/** Stage names in pipeline order; each is also its queue's short name. */
export const STAGE_NAMES: readonly string[] = pipelineStages().map((s) => s.name);

/** What a unit job carries: pointers only (the stage and the unit as JSON), never bytes or vectors. */
export interface UnitJobData {
  stage: string;
  unit: unknown;
  /** The key of the run that enqueued it (run-identity.ts): a worker serves only the published run. */
  run: string;
}

/** The units a phase planned per stage, and how many of them were complete already. */
export type Planned = Record<string, { units: number; skipped: number }>;

export interface ControlJobData {
  barrier: string;
  /** The key of the run that enqueued it. */
  run: string;
  /** The units the barrier's phase planned per stage (none for the start barrier). */
  planned?: Planned;
}

/** What a unit job returns (the unit executor's outcome); the final barrier sums these into the stage reports. */
export type UnitJobResult = UnitOutcome & {
  /** A job the run did not plan (job-check.ts): why it was refused; nothing was done and it counts nowhere. */
  refused?: string;
};

/**
 * "<stage>.<stage key>.<unit id>": a unit's job is the unit under one provenance key, so a run with
 * a changed config enqueues new jobs for the stages it changed and finds the others complete.
 * BullMQ job ids may not hold ":" (it separates Redis key parts).
 */
export const unitJobId = (stage: string, key: string, unitId: string) => `${stage}.${key}.${unitId}`;
/** The unit id of a unit job: its id is "<stage>.<stage key>.<unit id>" (queues.ts). */
export function unitIdOfJob(job: Pick<Job, 'id'>, stage: string): string {
  const keyAndUnit = job.id!.slice(stage.length + 1);
  return keyAndUnit.slice(keyAndUnit.indexOf('.') + 1);
}

/** A barrier's job id: one per run key. */
export const barrierJobId = (barrier: string, runKey: string) => `${barrier}.${runKey}`;

export function jobOptions(config: Config): JobsOptions {
  return {
    attempts: config.runner.attempts,
    // Exponential, with up to half the delay taken off at random so retries of many units spread out.
    backoff: { type: 'exponential', delay: config.runner.backoff_ms, jitter: 0.5 },
    // Completed jobs stay until their phase's barrier has summed them (retention.ts trims them then).
    removeOnComplete: false,
    removeOnFail: false,
  };
}

export class RunQueues {
  readonly prefix: string;
  readonly flows: FlowProducer;
  private readonly queues = new Map<string, Queue>();
  /**
   * The run these queues serve now (its key and stage keys), once known: reports and tallies are
   * this run's, not an earlier config's whose jobs may still sit in the same queues.
   */
  run?: { key: string; keys: StageKeys };

  /** `readOnly`: for commands that only look (status, the dashboard): opening a queue writes nothing (BullMQ would record its version). */
  constructor(
    readonly config: Config,
    readonly connection: Redis,
    private readonly opts: { readOnly?: boolean } = {},
  ) {
    this.prefix = config.redis.prefix;
    this.flows = new FlowProducer({ connection, prefix: this.prefix });
  }

  /** The BullMQ queue name of a stage (or `control`): "<run name>.<stage>". */
  name(short: string): string {
    return `${this.config.run.name}.${short}`;
  }

  queue(short: string): Queue {
    let q = this.queues.get(short);
    if (!q) {
      q = new Queue(this.name(short), { connection: this.connection, prefix: this.prefix, skipMetasUpdate: this.opts.readOnly });
      this.queues.set(short, q);
    }
    return q;
  }

  /** Every queue of the run, stages first, then control. */
  all(): Array<{ short: string; queue: Queue }> {
    return [...STAGE_NAMES, CONTROL].map((short) => ({ short, queue: this.queue(short) }));
  }

  async close(): Promise<void> {
    await Promise.all([...this.queues.values()].map((q) => q.close()));
    await this.flows.close();
  }
}
