// Unit-level entries in the failures ledger: a unit that failed on its last attempt is named there
// (stage, unit, the error), beside the item-level entries the stages write. The entry has its own
// file, so the unit's own ledger is untouched, and it is blanked when the unit later succeeds
// (after `megapairs retry-failed`), so the ledger always tells the run's current state.
import { layout } from '../../artifacts/layout.ts';
import type { Failure } from '../../ledger/ledger.ts';
import type { Storage } from '../../storage/storage.ts';

const key = (stage: string, unitId: string) => layout.ledgerPart(stage, `${unitId}.unit`);

export async function recordUnitFailure(work: Storage, stage: string, unitId: string, where: string, message: string): Promise<void> {
  const f: Failure = { stage, unit: unitId, item: unitId, where, reason: 'unit_failed', message };
  await work.write(key(stage, unitId), JSON.stringify(f) + '\n');
}

export async function clearUnitFailure(work: Storage, stage: string, unitId: string): Promise<void> {
  if (await work.exists(key(stage, unitId))) await work.write(key(stage, unitId), '');
}
