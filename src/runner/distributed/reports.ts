// Per-stage reports of a distributed run, from the finished jobs themselves (their return values
// and their own timestamps, processedOn and finishedOn), so they are the same whichever process
// asks, however often workers crashed, and however late a follower joins.
import type { Job } from 'bullmq';
import type { StageReport } from '../local.ts';
import { STAGE_NAMES, unitJobId, type RunQueues, type UnitJobResult } from './queues.ts';

const PAGE = 1000;

/** A stage's units so far: their results summed, and the span of their own timestamps (ms). */
export interface StageTally {
  done: number;
  skipped: number;
  items: number;
  failed: number;
  /** The first unit's start and the last one's finish, on any worker; 0 when none. */
  first: number;
  last: number;
}

export const emptyTally = (): StageTally => ({ done: 0, skipped: 0, items: 0, failed: 0, first: 0, last: 0 });

/** Adds one finished unit (its return value and times) to a tally. */
export function addUnit(t: StageTally, v: UnitJobResult | null | undefined, processedOn?: number, finishedOn?: number): void {
  if (v?.refused) return; // not a unit of the run
  t.done++;
  if (v?.skipped) t.skipped++;
  t.items += v?.items ?? 0;
  t.failed += v?.failed ?? 0;
  if (processedOn) t.first = t.first ? Math.min(t.first, processedOn) : processedOn;
  if (finishedOn) t.last = Math.max(t.last, finishedOn);
}

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

/** A stage's wall time: from its first unit starting to its last finishing, on any worker. */
export const tallySeconds = (t: StageTally) => (t.first && t.last > t.first ? (t.last - t.first) / 1000 : 0);

export function reportOf(stage: string, t: StageTally): StageReport {
  return { stage, units: t.done, skipped: t.skipped, items: t.items, failed: t.failed, seconds: tallySeconds(t) };
}

export async function stageReports(rq: RunQueues): Promise<StageReport[]> {
  const reports: StageReport[] = [];
  for (const stage of STAGE_NAMES) reports.push(reportOf(stage, await stageTally(rq, stage)));
  return reports;
}
