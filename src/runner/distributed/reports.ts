// Per-stage reports of a distributed run, from the finished jobs themselves (their return values
// and their own timestamps, processedOn and finishedOn), so they are the same whichever process
// asks, however often workers crashed, and however late a follower joins.
import type { Job } from 'bullmq';
import { addUnit, emptyTally, reportOf, type StageReport, type StageTally } from '../../core/stage-report.ts';
import { STAGE_NAMES, unitJobId, type RunQueues, type UnitJobResult } from './queues.ts';

const PAGE = 1000;

/** The stage's jobs in a state, of the run's current key only (the queue may hold an earlier config's). */
async function jobsIn(rq: RunQueues, stage: string, state: 'completed' | 'active'): Promise<Job[]> {
  const out: Job[] = [];
  const key = rq.run?.keys[stage];
  const prefix = key ? unitJobId(stage, key, '') : '';
  for (let start = 0; ; start += PAGE) {
    const page = await rq.queue(stage).getJobs([state], start, start + PAGE - 1, true);
    out.push(...page.filter((j) => j?.id?.startsWith(prefix)));
    if (page.length < PAGE) return out;
  }
}

/** The tally of a stage's completed jobs; with `active`, running units count towards its start. */
export async function stageTally(rq: RunQueues, stage: string, active = false): Promise<StageTally> {
  const t = emptyTally();
  for (const job of await jobsIn(rq, stage, 'completed')) addUnit(t, job.returnvalue as UnitJobResult | null, job.processedOn, job.finishedOn);
  if (active)
    for (const job of await jobsIn(rq, stage, 'active')) if (job.processedOn) t.first = t.first ? Math.min(t.first, job.processedOn) : job.processedOn;
  return t;
}

export async function stageReports(rq: RunQueues): Promise<StageReport[]> {
  const reports: StageReport[] = [];
  for (const stage of STAGE_NAMES) reports.push(reportOf(stage, await stageTally(rq, stage)));
  return reports;
}
