// `megapairs run --dry-run`: what a run of this config would reuse and compute, stage by stage,
// and why, without doing any work. A stage after one that must compute cannot list its units yet
// (they come from the artifacts before it), so it is shown as computing whole; a stage keyed by
// part knows its parts from its keys, so it says how many it reuses and computes all the same.
import { type Stage, type StageContext, unitsDone } from '../core/stage.ts';
import { changesSince, stageReason, stageStatus } from './explain.ts';
import { resolveRun } from './resolve-run.ts';

export interface PlannedStage {
  stage: string;
  key: string;
  /** Units to run, of how many; undefined when a stage before it must compute first. */
  compute?: number;
  units?: number;
  reason: string;
}

export async function dryRunPlan(ctx: StageContext): Promise<{ key: string; stages: PlannedStage[] }> {
  const run = await resolveRun(ctx);
  const out: PlannedStage[] = [];
  let upstreamComputes = false;
  for (const stage of ctx.stages) {
    const now = run.provenance[stage.name];
    const previous = run.previous?.stages[stage.name];
    if (upstreamComputes && !now.parts) {
      const changed = changesSince(previous, now);
      out.push({ stage: stage.name, key: now.key, reason: changed.length ? changed.join('; ') : 'a stage before it computes' });
      continue;
    }
    // A part-keyed stage's units are its parts (PartStage units are part numbers).
    const units = upstreamComputes ? Object.keys(now.parts!).map((u) => Number(u.replace(/^part-/, ''))) : await stage.plan(ctx);
    const done = await countDone(ctx, stage, units);
    const status = stageStatus(units.length, done);
    out.push({
      stage: stage.name,
      key: now.key,
      compute: units.length - done,
      units: units.length,
      reason: stageReason(status, previous, now, units.length, done),
    });
    if (done < units.length) upstreamComputes = true;
  }
  return { key: run.key, stages: out };
}

/**
 * The first stage whose artifacts are not all complete under the context's keys, and how many of
 * its units lack theirs; undefined when every stage is complete. The files decide, as for the
 * local runner: a record elsewhere (Redis) saying the run finished is only a cache of this.
 */
export async function missingWork(ctx: StageContext): Promise<{ stage: string; missing: number; units: number } | undefined> {
  for (const stage of ctx.stages) {
    const units = await stage.plan(ctx);
    const missing = units.length - (await countDone(ctx, stage, units));
    if (missing) return { stage: stage.name, missing, units: units.length };
  }
  return undefined;
}

/** How many of the units have their artifacts complete under the context's keys. */
async function countDone(ctx: StageContext, stage: Stage<any>, units: unknown[]): Promise<number> {
  return (await unitsDone(ctx, stage, units)).filter(Boolean).length;
}

export function formatDryRun(plan: { key: string; stages: PlannedStage[] }, runName: string): string {
  const lines = [`run ${runName}, key ${plan.key} (dry run: no work done)`];
  for (const s of plan.stages) {
    const what =
      s.units === undefined
        ? 'compute'
        : s.compute === 0
          ? 'reuse'
          : s.compute === s.units
            ? `compute ${s.units} units`
            : `compute ${s.compute} of ${s.units} units`;
    lines.push(`  ${s.stage.padEnd(9)} ${s.key}  ${what.padEnd(22)} ${s.reason}`);
  }
  return lines.join('\n') + '\n';
}
