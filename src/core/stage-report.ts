// A stage's statistics, one object collected the same way by both runners: each unit's outcome
// (runner/unit-executor.ts) is added to a tally as it finishes, and the tally becomes the stage's report
// in summary.json. The distributed runner adds the outcomes its jobs returned, read back from Redis.
import type { UnitResult } from './stage.ts';

/** What running one unit came to. */
export interface UnitOutcome extends UnitResult {
  /** Its artifacts were complete already (an earlier attempt or run made them): items are what that one recorded. */
  skipped: boolean;
}

/** Whether a stage computed its artifacts, reused them all, or some of each; 'not needed': the config asks nothing of it (partition when shards are id ranges). */
export type StageStatus = 'computed' | 'reused' | 'partly reused' | 'not needed';

export interface StageReport {
  stage: string;
  /** The stage's provenance key, whether it reused its artifacts or computed them, and why. */
  key?: string;
  status?: StageStatus;
  reason?: string;
  units: number;
  skipped: number;
  items: number;
  failed: number;
  seconds: number;
}

/** A stage's units so far: their outcomes summed, and the span of their own times (ms). */
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

/** Adds one finished unit (its outcome and times) to a tally; a refused job is not a unit of the run. */
export function addUnit(t: StageTally, v: (UnitOutcome & { refused?: string }) | null | undefined, startedAt?: number, finishedAt?: number): void {
  if (v?.refused) return;
  t.done++;
  if (v?.skipped) t.skipped++;
  t.items += v?.items ?? 0;
  t.failed += v?.failed ?? 0;
  if (startedAt) t.first = t.first ? Math.min(t.first, startedAt) : startedAt;
  if (finishedAt) t.last = Math.max(t.last, finishedAt);
}

/** A stage's wall time: from its first unit starting to its last finishing, on any worker. */
export const tallySeconds = (t: StageTally) => (t.first && t.last > t.first ? (t.last - t.first) / 1000 : 0);

/** The report of a tally; `units` counts the units planned, done or found complete. */
export function reportOf(stage: string, t: StageTally): StageReport {
  return { stage, units: t.done, skipped: t.skipped, items: t.items, failed: t.failed, seconds: tallySeconds(t) };
}
