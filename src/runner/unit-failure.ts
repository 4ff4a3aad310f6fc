// Unit-level entries in the failures ledger: a unit that failed for good is named there (stage,
// unit, why), beside the item-level entries the stages write. Every way a unit can fail for good
// has its reason: `unit_failed` (its last attempt threw), `unit_stalled` (its worker died more than
// runner.max_stalls times). The entry
// has its own file, so the unit's own ledger is untouched, and it is blanked when the unit later
// succeeds (after `megapairs retry-failed`), so the ledger always tells the run's current state.
import { UnitLedger } from '../ledger/ledger.ts';
import type { StageContext } from '../core/stage.ts';

export type UnitFailureReason = 'unit_failed' | 'unit_stalled';

/** The unit's own ledger file is failures/<stage>/<key>/<unit>.jsonl; this one is <unit>.unit.jsonl. */
const unitLedger = (stage: string, unitId: string) => new UnitLedger(stage, `${unitId}.unit`);

export async function recordUnitFailure(
  ctx: StageContext,
  stage: string,
  unitId: string,
  where: string,
  reason: UnitFailureReason,
  message: string,
): Promise<void> {
  const ledger = unitLedger(stage, unitId);
  // Pushed whole rather than add()ed: the entry names the unit, not its ledger file.
  // Retryable: each of these may pass on another try (the worker's death, a fixed config).
  ledger.failures.push({ stage, unit: unitId, item: unitId, where, reason, message, retryable: true });
  await ledger.save(ctx);
}

/** An empty ledger's save blanks an earlier entry, and writes nothing when there was none. */
export async function clearUnitFailure(ctx: StageContext, stage: string, unitId: string): Promise<void> {
  await unitLedger(stage, unitId).save(ctx);
}
