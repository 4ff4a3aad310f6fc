// The contract between stages and runners: the ground floor, which imports nothing above it. A
// stage says what it reads (`after`), where its artifacts live (`folder`), what marks a unit
// complete (`doneMarkers`), how to list its work units once the stages before it are complete,
// and how to make a unit. It knows nothing about where or when it runs: the local runner and the
// distributed runner's workers both run its units through runner/unit-executor.ts.
// src/pipeline.ts lists the stages; everything that needs the list (the local order, the
// distributed phases, the layout's folders, retry-failed, the docs' tables) derives it from there.
import type { Config } from '../config/schema.ts';
import type { Storage } from '../storage/storage.ts';
import type { StageKeys } from './keys.ts';
import type { Layout } from './layout.ts';
import { readMarker } from './marker.ts';
import type { SharedLimits } from './shared-limits.ts';

export interface StageContext {
  config: Config;
  input: Storage;
  work: Storage;
  output: Storage;
  /** A local folder for caches (downloaded index shards, built-in models). */
  cacheDir: string;
  /** The stages this context runs, in order: the pipeline's registry (src/pipeline.ts). */
  readonly stages: readonly Stage<any>[];
  /** Every stage's provenance key; set once per run (resolveRun), before any unit runs. */
  keys?: StageKeys;
  /** Artifact paths under the current keys (throws until the keys are set). */
  readonly layout: Layout;
  /**
   * Limits shared with the run's other processes (a model endpoint's), when the runner keeps
   * them (the distributed runner, in its Redis); absent, each process's limits are its own.
   */
  sharedLimits?: SharedLimits;
}

export interface UnitResult {
  /** Items the unit carried forward (images catalogued, vectors embedded, pairs mined, ...). */
  items: number;
  /** Items it sent to the ledger. */
  failed: number;
}

/**
 * A file whose presence marks a unit complete; `holds`: its content must be exactly this (a
 * marker under the output prefix, whose plain names any key may have written, holds its key).
 */
export interface DoneMarker {
  storage: 'work' | 'output';
  key: string;
  holds?: string;
}

export interface Stage<U = unknown> {
  readonly name: string;
  /** The stages whose artifacts this one reads: their keys are part of its key. */
  readonly after: readonly string[];
  /**
   * The work folder its artifacts live in, under its key (`<folder>/<key>/...`); none for a stage
   * that writes only the product under the output prefix.
   */
  readonly folder?: string;
  /** Where its units run best; the distributed worker kinds (gpu, annotate, cpu) follow it. */
  readonly needs?: 'gpu' | 'model-endpoint';
  /**
   * Its units may be planned before the stages it reads are complete, each waiting on the unit of
   * the same id in those stages (`unit`: emit part n after annotate part n) or on all their units
   * (`all`: the manifest after every catalog part). Its plan() must then not read their artifacts.
   * Without it, a stage starts only when every unit of the stages it reads is complete.
   */
  readonly chain?: 'unit' | 'all';
  /**
   * What else decides this stage's artifacts, by config path: the config values it reads, digests
   * of the files they name. Never a location (a path, a bucket): storage is compared by identity.
   */
  decidedBy(ctx: StageContext): Record<string, unknown> | Promise<Record<string, unknown>>;
  /**
   * Its artifacts are kept per catalog part, each under a key of its own (provenance/stage-keys.ts),
   * so a grown corpus computes only its new parts. Its units are parts named by `partName`.
   */
  readonly keyedByPart?: boolean;
  /** For a stage keyed by part that lists its own parts: what decides each part, by unit id. */
  partsDecidedBy?(ctx: StageContext): Promise<Record<string, Record<string, unknown>>>;
  /** Its units compute on the calling thread (hnswlib is synchronous): the local runner runs them in worker threads. */
  readonly threaded?: boolean;
  /** The units to run; called only after every earlier stage is complete (but see `chain`). */
  plan(ctx: StageContext): Promise<U[]>;
  /** Stable unit name, for logs, the ledger and job ids. */
  unitId(unit: U): string;
  /**
   * The files that mark a unit complete, written last by run(): a rerun skips the unit when they
   * all hold, and retry-failed removes them to make it run again.
   */
  doneMarkers(ctx: StageContext, unit: U): DoneMarker[];
  run(ctx: StageContext, unit: U): Promise<UnitResult>;
}

/** The storage a marker is in. */
export const markerStorage = (ctx: StageContext, m: DoneMarker): Storage => (m.storage === 'work' ? ctx.work : ctx.output);

/** Whether a unit's artifacts are complete: every one of its markers holds. */
export async function isUnitDone<U>(ctx: StageContext, stage: Stage<U>, unit: U): Promise<boolean> {
  const held = await Promise.all(
    stage.doneMarkers(ctx, unit).map(async (m) => {
      const storage = markerStorage(ctx, m);
      return m.holds === undefined ? storage.exists(m.key) : (await readMarker(storage, m.key)) === m.holds;
    }),
  );
  return held.every(Boolean);
}

/** Which of the units are complete (isUnitDone of each): a run plans, and a dry run counts, by this. */
export function unitsDone<U>(ctx: StageContext, stage: Stage<U>, units: readonly U[]): Promise<boolean[]> {
  return Promise.all(units.map((u) => isUnitDone(ctx, stage, u)));
}
