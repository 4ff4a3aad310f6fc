// What a unit computed, kept in storage beside its ledger. A job whose worker died after the unit
// wrote its artifacts (or whose completion Redis lost in an outage) runs again and finds the unit
// complete; it then reports the items the first attempt computed, read from here, so the stage's
// counts are the artifacts' and not 0 for every unit a crash made run twice.
import type { StageContext, UnitResult } from '../core/stage.ts';

export async function writeUnitResult(ctx: StageContext, stage: string, unitId: string, r: UnitResult): Promise<void> {
  await ctx.work.write(ctx.layout.unitResult(stage, unitId), JSON.stringify({ items: r.items, failed: r.failed }) + '\n');
}

/** The unit's recorded result; zeros when none was written (a unit complete before this runner recorded results). */
export async function readUnitResult(ctx: StageContext, stage: string, unitId: string): Promise<UnitResult> {
  const key = ctx.layout.unitResult(stage, unitId);
  if (!(await ctx.work.exists(key))) return { items: 0, failed: 0 };
  const r = JSON.parse((await ctx.work.read(key)).toString('utf8')) as UnitResult;
  return { items: r.items ?? 0, failed: r.failed ?? 0 };
}
