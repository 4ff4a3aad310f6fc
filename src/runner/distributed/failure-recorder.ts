// A worker's ledger entries for the units that fail for good: their last attempt, too many stalls,
// or a refusal (worker.ts says why the worker is the one to write them).
import type { Job } from 'bullmq';
import { hostname } from 'node:os';
import type { StageContext } from '../../core/stage.ts';
import { unitIdOfJob, type RunQueues } from './queues.ts';
import { recordUnitFailure, type UnitFailureReason } from '../unit-failure.ts';

export class FailureRecorder {
  private readonly where = `${hostname()} pid ${process.pid}`;
  /** Ledger writes in flight, awaited by the worker's stop(). */
  private readonly writes = new Set<Promise<void>>();

  constructor(
    private readonly ctx: StageContext,
    private readonly rq: RunQueues,
    private readonly log: (line: string) => void,
  ) {}

  /** A BullMQ `failed` event of a unit job: the unit goes to the ledger if it failed for good. */
  failed(stage: string, job: Job, err: Error): void {
    const p = this.record(stage, job, err);
    this.writes.add(p);
    void p.finally(() => this.writes.delete(p));
  }

  /** Once every ledger write in flight is done. */
  async settled(): Promise<void> {
    await Promise.all(this.writes);
  }

  /** A unit that failed for good (BullMQ sets finishedOn only then) goes to the ledger. */
  private async record(stage: string, job: Job, err: Error): Promise<void> {
    if (!job.finishedOn) return; // it will be retried
    const config = this.ctx.config;
    let reason: UnitFailureReason = 'unit_failed';
    let message = err.message;
    if (job.stalledCounter > config.runner.max_stalls) {
      reason = 'unit_stalled';
      message = `its worker stopped renewing the lock ${job.stalledCounter} times (killed, or hung), more than runner.max_stalls (${config.runner.max_stalls})`;
    }
    const at = `${this.rq.name(stage)} job ${job.id} (failed on ${this.where})`;
    await recordUnitFailure(this.ctx, stage, unitIdOfJob(job, stage), at, reason, message).catch((e: Error) =>
      this.log(`cannot write the ledger entry of ${job.id}: ${e.message}`),
    );
    this.log(`failed for good ${job.id} (${reason}): ${message}`);
  }
}
