// Per-stage reports of a distributed run, from the finished jobs themselves (their return values
// and timestamps), so they are the same whichever process asks and however often workers crashed.
import { stageReason, stageStatus } from '../../provenance/explain.ts';
import type { PublishedRun } from './run-identity.ts';
import type { Job } from 'bullmq';
import type { StageReport } from '../local.ts';
import { STAGE_NAMES, unitJobId, type RunQueues, type UnitJobResult } from './queues.ts';

const PAGE = 1000;

/** The stage's completed jobs under its current key (a queue also holds earlier configs' jobs). */
async function completedJobs(rq: RunQueues, stage: string, key: string): Promise<Job[]> {
  const out: Job[] = [];
  const prefix = unitJobId(stage, key, '');
  for (let start = 0; ; start += PAGE) {
    const page = await rq.queue(stage).getJobs(['completed'], start, start + PAGE - 1, true);
    out.push(...page.filter((j) => j?.id?.startsWith(prefix)));
    if (page.length < PAGE) return out;
  }
}

export async function stageReports(rq: RunQueues, run: PublishedRun): Promise<StageReport[]> {
  const reports: StageReport[] = [];
  for (const stage of STAGE_NAMES) {
    const now = run.stages[stage];
    const jobs = await completedJobs(rq, stage, now.key);
    const r: StageReport = { stage, key: now.key, units: jobs.length, skipped: 0, items: 0, failed: 0, seconds: 0 };
    let first = Infinity;
    let last = 0;
    for (const job of jobs) {
      const v = job.returnvalue as UnitJobResult | null;
      if (v?.skipped) r.skipped++;
      r.items += v?.items ?? 0;
      r.failed += v?.failed ?? 0;
      first = Math.min(first, job.processedOn ?? Infinity);
      last = Math.max(last, job.finishedOn ?? 0);
    }
    // A stage's wall time: from its first unit starting to its last finishing, on any worker.
    r.seconds = Number.isFinite(first) && last > first ? (last - first) / 1000 : 0;
    r.status = stageStatus(r.units, r.skipped);
    r.reason = stageReason(r.status, run.previous?.[stage], now, r.units, r.skipped);
    reports.push(r);
  }
  return reports;
}
