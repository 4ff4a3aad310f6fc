// Per-stage reports of a distributed run, from the finished jobs themselves (their return values
// and timestamps), so they are the same whichever process asks and however often workers crashed.
import type { Job } from 'bullmq';
import type { StageReport } from '../local.ts';
import { STAGE_NAMES, type RunQueues, type UnitJobResult } from './queues.ts';

const PAGE = 1000;

async function completedJobs(rq: RunQueues, stage: string): Promise<Job[]> {
  const out: Job[] = [];
  for (let start = 0; ; start += PAGE) {
    const page = await rq.queue(stage).getJobs(['completed'], start, start + PAGE - 1, true);
    out.push(...page.filter(Boolean));
    if (page.length < PAGE) return out;
  }
}

export async function stageReports(rq: RunQueues): Promise<StageReport[]> {
  const reports: StageReport[] = [];
  for (const stage of STAGE_NAMES) {
    const jobs = await completedJobs(rq, stage);
    const r: StageReport = { stage, units: jobs.length, skipped: 0, items: 0, failed: 0, seconds: 0 };
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
    reports.push(r);
  }
  return reports;
}
