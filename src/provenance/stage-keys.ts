// The provenance of every stage's artifacts, as build systems key their outputs: a stage's key is
// a digest of what decides its artifacts (the config values it reads, digests of the files and
// corpus they name) and of the keys of the stages whose artifacts it reads. A change anywhere
// upstream changes every key after it; an unchanged config gives the same keys, so nothing is
// recomputed. Artifacts live under their stage's key (layout.ts), so an old artifact is never read
// under a new key.
import type { Stage, StageContext } from '../stages/stage.ts';
import { digest } from './digest.ts';

/** Raised when the layout of artifacts changes in a way old keys must not be read under. */
export const ARTIFACT_FORMAT = 2;

export interface StageProvenance {
  key: string;
  /** The values that decide the stage's artifacts, by config path (plus `corpus`, model digests). */
  decidedBy: Record<string, unknown>;
  /** The keys of the stages it reads. */
  after: Record<string, string>;
}

export type RunProvenance = Record<string, StageProvenance>;
export type StageKeys = Record<string, string>;

/** Every stage's provenance, in pipeline order; a stage may read only stages listed before it. */
export async function resolveProvenance(ctx: StageContext, stages: readonly Stage<any>[]): Promise<RunProvenance> {
  const out: RunProvenance = {};
  for (const stage of stages) {
    const after: Record<string, string> = {};
    for (const name of stage.after) {
      const up = out[name];
      if (!up) throw new Error(`stage ${stage.name} reads ${name}, which does not come before it in the pipeline`);
      after[name] = up.key;
    }
    const decidedBy = await stage.decidedBy(ctx);
    out[stage.name] = { key: digest({ format: ARTIFACT_FORMAT, stage: stage.name, decidedBy, after }), decidedBy, after };
  }
  return out;
}

export const keysOf = (p: RunProvenance): StageKeys => Object.fromEntries(Object.entries(p).map(([s, v]) => [s, v.key]));

/** The run's own key: the last stage's, which chains every other. */
export const runKey = (keys: StageKeys, stageOrder: readonly string[]): string => keys[stageOrder[stageOrder.length - 1]];
