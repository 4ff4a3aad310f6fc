// `megapairs retry-failed` for the local runner. The units to run again are those the ledger names
// as failed (reason unit_failed: their artifact was never written, so a rerun runs them) and those
// holding retryable item entries (a model reply that stayed malformed, say): those units' artifacts
// are forgotten, with everything derived from them, so the rerun makes them again. Each rerun unit
// rewrites its own ledger file, so entries that pass are cleared.
import { readLedger } from '../ledger/ledger.ts';
import { ensureKeys } from '../provenance/resolve-run.ts';
import { markerStorage, type Stage, type StageContext } from '../core/stage.ts';
import { NotFoundError, type Storage } from '../storage/storage.ts';

/**
 * A stage's units; none when the run has not reached it (an artifact it plans from is missing).
 * Any other error (an unreachable store) is thrown: retry-failed must not report that it forgot
 * nothing when it could not look.
 */
const planned = (ctx: StageContext, stage: Stage<any>): Promise<unknown[]> =>
  stage.plan(ctx).catch((err: unknown) => {
    if (err instanceof NotFoundError) return [];
    throw err;
  });

export interface RetryPlan {
  /** "<stage> <unit>" of every unit named by the ledger. */
  units: string[];
  /** Artifacts removed so their units run again. */
  forgotten: string[];
}

/**
 * Forgets the artifacts of units with retryable item entries and of everything derived from them:
 * a later stage's unit of the same name (embed part 3 from catalog part 3), or, for a stage whose
 * units mix every part (index shards), all its units and all of every stage after it.
 */
export async function prepareRetry(ctx: StageContext): Promise<RetryPlan> {
  await ensureKeys(ctx); // the units of this config's keys
  const ledger = await readLedger(ctx);
  const named = new Map<string, Set<string>>();
  const toRedo = new Map<string, Set<string>>(); // stage -> unit ids whose artifacts must go
  const add = (m: Map<string, Set<string>>, stage: string, unitId: string) => m.set(stage, (m.get(stage) ?? new Set()).add(unitId));
  for (const f of ledger) {
    if (!f.retryable) continue;
    const unitId = f.unit.replace(/\.unit$/, ''); // a unit failure's own ledger file is <unit>.unit
    add(named, f.stage, unitId);
    if (f.reason !== 'unit_failed') add(toRedo, f.stage, unitId);
  }
  const stages = ctx.stages;
  const plans = await Promise.all(stages.map((s) => planned(ctx, s)));
  const forget: Array<[Storage, string]> = [];
  let dirty = new Set<string>(); // unit ids carried down from the stages above
  let all = false;
  stages.forEach((stage, i) => {
    const units = plans[i];
    const ids = units.map((u) => stage.unitId(u));
    const mine = toRedo.get(stage.name) ?? new Set<string>();
    const mixes = dirty.size > 0 && !ids.some((id) => dirty.has(id)); // its units are not per part
    if (mixes && units.length > 1) all = true;
    const chosen = all || mixes ? units : units.filter((u) => dirty.has(stage.unitId(u)) || mine.has(stage.unitId(u)));
    for (const u of chosen) forget.push(...stage.doneMarkers(ctx, u).map((m): [Storage, string] => [markerStorage(ctx, m), m.key]));
    if (!mixes) dirty = new Set([...dirty, ...mine]);
    else dirty = new Set([...dirty, ...mine, ...ids]);
  });
  // Later stages first: a stage's plan reads what the stage before it made.
  const forgotten: string[] = [];
  for (const [storage, key] of forget.reverse()) {
    if (!(await storage.exists(key))) continue;
    await storage.delete(key);
    forgotten.push(storage.uri(key));
  }
  return { units: [...named].flatMap(([stage, ids]) => [...ids].map((id) => `${stage} ${id}`)), forgotten };
}
