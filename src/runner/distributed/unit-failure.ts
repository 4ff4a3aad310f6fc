// Unit-level entries in the failures ledger: a unit that failed on its last attempt is named there
// (stage, unit, the error), beside the item-level entries the stages write. The entry has its own
// file, so the unit's own ledger is untouched, and it is blanked when the unit later succeeds
// (after `megapairs retry-failed`), so the ledger always tells the run's current state.
import { UnitLedger } from '../../ledger/ledger.ts';
import type { StageContext } from '../../stages/stage.ts';

/** The unit's own ledger file is failures/<stage>/<unit>.jsonl; this one is <unit>.unit.jsonl. */
const unitLedger = (stage: string, unitId: string) => new UnitLedger(stage, `${unitId}.unit`);

export async function recordUnitFailure(ctx: StageContext, stage: string, unitId: string, where: string, message: string): Promise<void> {
  const ledger = unitLedger(stage, unitId);
  // Pushed whole rather than add()ed: the entry names the unit, not its ledger file.
  ledger.failures.push({ stage, unit: unitId, item: unitId, where, reason: 'unit_failed', message, retryable: true });
  await ledger.save(ctx);
}

/** An empty ledger's save blanks an earlier entry, and writes nothing when there was none. */
export async function clearUnitFailure(ctx: StageContext, stage: string, unitId: string): Promise<void> {
  await unitLedger(stage, unitId).save(ctx);
}
