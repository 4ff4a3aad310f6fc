// The provenance of every stage's artifacts, as build systems key their outputs: a stage's key is
// a digest of what decides its artifacts (the config values it reads, digests of the files and
// corpus they name) and of the keys of the stages whose artifacts it reads. A change anywhere
// upstream changes every key after it; an unchanged config gives the same keys, so nothing is
// recomputed. Artifacts live under their stage's key (layout.ts), so an old artifact is never read
// under a new key.
import type { Stage, StageContext } from '../core/stage.ts';
import { partKeyName, type StageKeys } from '../core/keys.ts';
import { digest } from '../core/digest.ts';

/** Raised when the layout of artifacts changes in a way old keys must not be read under. */
export const ARTIFACT_FORMAT = 2;

export interface StageProvenance {
  key: string;
  /** The values that decide the stage's artifacts, by config path (plus `corpus`, model digests). */
  decidedBy: Record<string, unknown>;
  /** The keys of the stages it reads. */
  after: Record<string, string>;
  /** Stages keyed by part: each part's key and what decides it beyond `decidedBy`, by unit id. */
  parts?: Record<string, PartProvenance>;
}

export interface PartProvenance {
  key: string;
  decidedBy: Record<string, unknown>;
}

export type RunProvenance = Record<string, StageProvenance>;

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
    if (!stage.keyedByPart) {
      out[stage.name] = { key: digest({ format: ARTIFACT_FORMAT, stage: stage.name, decidedBy, after }), decidedBy, after };
      continue;
    }
    const parts = await partProvenance(ctx, stage, decidedBy, out);
    const partKeys = Object.fromEntries(Object.entries(parts).map(([unit, p]) => [unit, p.key]));
    out[stage.name] = { key: digest({ format: ARTIFACT_FORMAT, stage: stage.name, decidedBy, after, parts: partKeys }), decidedBy, after, parts };
  }
  return out;
}

/**
 * Each part's key: the stage's decidedBy, the part's own (partsDecidedBy), and for every stage it
 * reads the same part's key (or, for a stage not keyed by part, its stage key). The parts are its
 * own (partsDecidedBy) or those of the part-keyed stage it reads.
 */
async function partProvenance(ctx: StageContext, stage: Stage<any>, decidedBy: Record<string, unknown>, before: RunProvenance) {
  const own = stage.partsDecidedBy ? await stage.partsDecidedBy(ctx) : undefined;
  const upstream = stage.after.map((name) => before[name].parts).find(Boolean);
  if (!own && !upstream) throw new Error(`stage ${stage.name} is keyed by part but neither lists its parts nor reads a stage that does`);
  const parts: Record<string, PartProvenance> = {};
  for (const unit of Object.keys(own ?? upstream!)) {
    const after: Record<string, string> = {};
    for (const name of stage.after) {
      const up = before[name];
      const key = up.parts ? up.parts[unit]?.key : up.key;
      if (!key) throw new Error(`stage ${stage.name}: ${unit} has no part in ${name}`);
      after[name] = key;
    }
    const part = own?.[unit] ?? {};
    parts[unit] = { key: digest({ format: ARTIFACT_FORMAT, stage: stage.name, decidedBy, part, after }), decidedBy: part };
  }
  return parts;
}

/** Stage keys, then every part key under its `<stage>@<unit>` name. */
export function keysOf(p: RunProvenance): StageKeys {
  const out: StageKeys = {};
  for (const [stage, v] of Object.entries(p)) {
    out[stage] = v.key;
    for (const [unit, part] of Object.entries(v.parts ?? {})) out[partKeyName(stage, unit)] = part.key;
  }
  return out;
}
