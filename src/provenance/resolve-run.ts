// Resolving a run: every stage's key from the config and what it names (corpus listing, model
// digests), set on the context so every artifact path is the current key's, and the last recorded
// run of the same name, to explain what changed. `record` writes this run's record in its place.
import type { Stage, StageContext } from '../core/stage.ts';
import { readRunRecord, writeRunRecord, type RunRecord } from './run-record.ts';
import { runKey } from '../core/keys.ts';
import { keysOf, resolveProvenance, type RunProvenance } from './stage-keys.ts';

export interface ResolvedRun {
  key: string;
  provenance: RunProvenance;
  /** The run of this name recorded before this one, if any. */
  previous?: RunRecord;
}

export async function resolveRun(ctx: StageContext, opts: { record?: boolean; stages?: readonly Stage<any>[] } = {}): Promise<ResolvedRun> {
  const stages = opts.stages ?? ctx.stages;
  const provenance = await resolveProvenance(ctx, stages);
  ctx.keys = keysOf(provenance);
  const key = runKey(
    ctx.keys,
    stages.map((s) => s.name),
  );
  const previous = await readRunRecord(ctx);
  if (opts.record) await writeRunRecord(ctx, { run: ctx.config.run.name, key, startedAt: new Date().toISOString(), stages: provenance });
  return { key, provenance, previous };
}

/** Sets the context's keys from its config unless a runner set them: reading a config's product means reading its keys' artifacts. */
export async function ensureKeys(ctx: StageContext): Promise<void> {
  if (!ctx.keys) await resolveRun(ctx);
}
