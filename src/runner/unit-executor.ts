// Runs one unit of a stage, the same way for every runner (as DataTrove's executor/base.py runs
// every rank for its local, Slurm and Ray launchers): skip it when its markers hold, else run it
// and record what it computed; then blank an earlier failure of it in the ledger. The local
// runner and the distributed workers only decide which units run where and when.
import { isUnitDone, type Stage, type StageContext, unitsDone } from '../core/stage.ts';
import type { UnitOutcome } from '../core/stage-report.ts';
import { clearUnitFailure } from './unit-failure.ts';
import { readUnitResult, writeUnitResult } from './unit-record.ts';

/**
 * A stage's units, split into those already complete (counted as skipped, with no items: this
 * run did not compute them) and those to run: both runners plan a stage this way.
 */
export async function plannedUnits<U>(ctx: StageContext, stage: Stage<U>): Promise<{ units: U[]; todo: U[] }> {
  const units = await stage.plan(ctx);
  const done = await unitsDone(ctx, stage, units);
  return { units, todo: units.filter((_, i) => !done[i]) };
}

/** Runs a planned unit; one found complete meanwhile (an earlier attempt made it) reports what that attempt recorded. */
export async function executeUnit<U>(ctx: StageContext, stage: Stage<U>, unit: U): Promise<UnitOutcome> {
  const unitId = stage.unitId(unit);
  let outcome: UnitOutcome;
  if (await isUnitDone(ctx, stage, unit)) outcome = { skipped: true, ...(await readUnitResult(ctx, stage.name, unitId)) };
  else {
    const r = await stage.run(ctx, unit);
    // Recorded so that an attempt which finds the unit complete (its worker died after the
    // artifacts were written, or Redis lost the completion) reports the same items.
    await writeUnitResult(ctx, stage.name, unitId, r);
    outcome = { skipped: false, items: r.items, failed: r.failed };
  }
  await clearUnitFailure(ctx, stage.name, unitId);
  return outcome;
}
