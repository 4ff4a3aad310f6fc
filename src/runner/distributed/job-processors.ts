// What a worker does with a job: a unit job runs its unit on one of the process's threads; a
// barrier job (control queue) runs on the main thread, as it only plans and enqueues. Neither
// trusts the job (job-check.ts), and both serve only the worker's run (served-run.ts).
import { WaitingError, type Job } from 'bullmq';
import type { StageContext } from '../../core/stage.ts';
import { itemFailuresTotal, itemsTotal, unitSeconds, unitsTotal } from '../../metrics/registry.ts';
import { readPublishedRun } from './run-identity.ts';
import { advance } from './phases.ts';
import type { ControlJobData, RunQueues, UnitJobData, UnitJobResult } from './queues.ts';
import { AbortedError } from '../threads/thread-pool.ts';
import type { UnitThreads } from '../threads/unit-threads.ts';
import { JobCheck } from './job-check.ts';
import { redacting } from '../../secrets/redact.ts';
import type { ServedRun } from './served-run.ts';

export class JobProcessors {
  private readonly check: JobCheck;

  constructor(
    private readonly ctx: StageContext,
    private readonly rq: RunQueues,
    private readonly run: ServedRun,
    private readonly threads: UnitThreads,
    private readonly log: (line: string) => void,
  ) {
    this.check = new JobCheck(rq, log);
  }

  // What a job's failure says is kept in Redis (failedReason, stacktrace): redacting() leaves secrets out.
  /** The processor of unit jobs. */
  readonly unit = redacting((job: Job<UnitJobData>, token?: string) => this.runUnit(job, token));
  /** The processor of barrier jobs. */
  readonly barrier = redacting((job: Job<ControlJobData>, token?: string) => this.runBarrier(job, token));

  private async runUnit(job: Job<UnitJobData>, token?: string): Promise<UnitJobResult> {
    const started = Date.now();
    if (!(await this.run.serves(job, token))) return { skipped: true, items: 0, failed: 0 };
    // The run's own copy of the unit, never the job's (job-check.ts).
    const checked = await this.check.unit(this.ctx, this.run.key, job.queueName.slice(this.ctx.config.run.name.length + 1), job);
    if ('refused' in checked) return { skipped: true, items: 0, failed: 0, refused: checked.refused };
    this.log(`start ${job.id}`);
    const stage = job.data.stage;
    try {
      const r = await this.threads.run({ stage, unit: checked.unit, keys: this.run.keys });
      const seconds = (Date.now() - started) / 1000;
      this.log(`done ${job.id} ${r.skipped ? 'skipped (complete)' : `${r.items} items`} ${seconds.toFixed(1)}s`);
      unitsTotal.inc({ stage, outcome: r.skipped ? 'skipped' : 'done' });
      itemsTotal.inc({ stage }, r.items);
      itemFailuresTotal.inc({ stage }, r.failed);
      if (!r.skipped) unitSeconds.observe({ stage }, seconds);
      return r;
    } catch (err) {
      if (err instanceof AbortedError) {
        // Shutdown overran its grace period: hand the unit back now rather than after lock_ms.
        await job.moveToWait(token);
        this.log(`returned ${job.id}`);
        throw new WaitingError();
      }
      this.log(`failed ${job.id} (attempt ${job.attemptsMade + 1}/${job.opts.attempts ?? 1}): ${(err as Error).message}`);
      unitsTotal.inc({ stage, outcome: 'failed' });
      throw err;
    }
  }

  private async runBarrier(job: Job<ControlJobData>, token?: string): Promise<unknown> {
    if (!(await this.run.serves(job, token))) return { superseded: true };
    const refused = await this.check.barrier(this.ctx, this.run.key, job);
    if (refused) return { refused };
    this.log(`start ${job.id}`);
    // The run as published now: a \`megapairs run\` of the same key since (a rebuild) tells its reports what came before it.
    const published = await readPublishedRun(this.rq.connection, this.ctx.config);
    const r = await advance(this.ctx, this.rq, job.data, published?.key === this.run.key ? published : this.run.published);
    this.log(`done ${job.id}`);
    return r;
  }
}
