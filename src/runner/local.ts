// The local runner: one process, stages in order, up to `runner.concurrency` units of a stage at
// once, each through the unit executor (which skips a complete unit: that is all resuming takes).
// A unit that fails is named in the ledger (reason unit_failed, retryable), and the entry is
// cleared when the unit later succeeds, as in the distributed runner. Units of threaded stages
// (index builds and searches: hnswlib computes synchronously) run in unit threads, so
// concurrency makes them faster too.
import type { StageContext, Stage } from '../core/stage.ts';
import { stageReason, stageStatus } from '../provenance/explain.ts';
import { resolveRun, type ResolvedRun } from '../provenance/resolve-run.ts';
import { describeError } from '../util/error-chain.ts';
import { mapPool } from '../util/pool.ts';
import { ProgressReporter, type StageProgress } from './progress.ts';
import { addUnit, emptyTally, reportOf, type StageReport } from '../core/stage-report.ts';
import { UnitThreads } from './threads/unit-threads.ts';
import { executeUnit, plannedUnits } from './unit-executor.ts';
import { recordUnitFailure } from './unit-failure.ts';

export class UnitError extends Error {
  constructor(
    readonly stage: string,
    readonly unit: string,
    cause: Error,
  ) {
    super(`${stage} ${unit} failed: ${describeError(cause)}`, { cause });
    this.name = 'UnitError';
  }
}

export async function runStage(
  ctx: StageContext,
  stage: Stage<any>,
  concurrency: number,
  progress: ProgressReporter,
  threads?: UnitThreads,
): Promise<StageReport> {
  const tally = emptyTally();
  const startedAt = Date.now();
  const { units, todo } = await plannedUnits(ctx, stage);
  tally.done = tally.skipped = units.length - todo.length;
  const p = (): StageProgress => ({
    stage: stage.name,
    units: units.length,
    done: tally.done,
    skipped: tally.skipped,
    items: tally.items,
    failed: tally.failed,
    startedAt,
  });
  progress.update(p());
  let firstError: UnitError | undefined;
  await mapPool(todo, concurrency, async (unit) => {
    if (firstError) return; // stop starting units after a failure; let those in flight finish
    const unitId = stage.unitId(unit);
    try {
      const started = Date.now();
      const outcome = stage.threaded && threads ? await threads.run({ stage: stage.name, unit, keys: ctx.keys! }) : await executeUnit(ctx, stage, unit);
      addUnit(tally, outcome, started, Date.now());
      progress.update(p());
    } catch (err) {
      const failure = new UnitError(stage.name, unitId, err as Error);
      firstError ??= failure;
      await recordUnitFailure(ctx, stage.name, unitId, `${stage.name} ${unitId}`, 'unit_failed', describeError(err)).catch(() => {});
    }
  });
  progress.finish(p());
  if (firstError) throw firstError;
  return { ...reportOf(stage.name, tally), units: units.length, seconds: (Date.now() - startedAt) / 1000 };
}

/** Runs every stage under the run's keys (resolved here unless `resolved` is given) and says per stage what it reused. */
export async function runLocal(
  ctx: StageContext,
  opts: { progress?: ProgressReporter; stages?: Stage<any>[]; resolved?: ResolvedRun } = {},
): Promise<StageReport[]> {
  const progress = opts.progress ?? new ProgressReporter();
  const stages = opts.stages ?? ctx.stages;
  const run = opts.resolved ?? (await resolveRun(ctx, { record: true }));
  const reports: StageReport[] = [];
  const concurrency = ctx.config.runner.concurrency;
  const threads = concurrency > 1 ? new UnitThreads(ctx.config, concurrency) : undefined;
  try {
    for (const stage of stages) {
      const r = await runStage(ctx, stage, concurrency, progress, threads);
      const now = run.provenance[stage.name];
      const status = stageStatus(r.units, r.skipped);
      reports.push({ ...r, key: now?.key, status, reason: now && stageReason(status, run.previous?.stages[stage.name], now, r.units, r.skipped) });
    }
  } finally {
    await threads?.close();
  }
  return reports;
}
