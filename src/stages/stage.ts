// The contract between stages and runners. A stage knows how to list its work units once the
// stages before it are complete, whether a unit's artifact already exists, and how to make it.
// It knows nothing about where or when it runs: the local runner calls it in-process, the
// distributed runner from queue workers.
import type { Layout } from '../artifacts/layout.ts';
import type { Config } from '../config/schema.ts';
import type { StageKeys } from '../provenance/stage-keys.ts';
import type { Storage } from '../storage/storage.ts';
import type { SharedResources } from './shared-resources.ts';

export interface StageContext {
  config: Config;
  input: Storage;
  work: Storage;
  output: Storage;
  /** A local folder for caches (downloaded index shards, built-in models). */
  cacheDir: string;
  /** Every stage's provenance key; set once per run (resolveRun), before any unit runs. */
  keys?: StageKeys;
  /** Artifact paths under the current keys (throws until the keys are set). */
  readonly layout: Layout;
  /**
   * What the units of a process share, loaded once under the current keys (the manifest, shard
   * metadata, the encoders, the annotator); rebuilt with `layout` when the keys change.
   */
  readonly shared: SharedResources;
}

export interface UnitResult {
  /** Items the unit carried forward (images catalogued, vectors embedded, pairs mined, ...). */
  items: number;
  /** Items it sent to the ledger. */
  failed: number;
}

export interface Stage<U = unknown> {
  readonly name: string;
  /** The stages whose artifacts this one reads: their keys are part of its key. */
  readonly after: readonly string[];
  /**
   * What else decides this stage's artifacts, by config path: the config values it reads, digests
   * of the files they name. Never a location (a path, a bucket): storage is compared by identity.
   */
  decidedBy(ctx: StageContext): Record<string, unknown> | Promise<Record<string, unknown>>;
  /**
   * Its artifacts are kept per catalog part, each under a key of its own (stage-keys.ts), so a
   * grown corpus computes only its new parts. Its units are parts named by `partName`.
   */
  readonly keyedByPart?: boolean;
  /** For a stage keyed by part that lists its own parts: what decides each part, by unit id. */
  partsDecidedBy?(ctx: StageContext): Promise<Record<string, Record<string, unknown>>>;
  /** Its units compute on the calling thread (hnswlib is synchronous): the local runner runs them in worker threads. */
  readonly threaded?: boolean;
  /** The units to run; called only after every earlier stage is complete. */
  plan(ctx: StageContext): Promise<U[]>;
  /** Stable unit name, for logs, the ledger and job ids. */
  unitId(unit: U): string;
  /** Whether the unit's artifact is complete, so a rerun can skip it. */
  isDone(ctx: StageContext, unit: U): Promise<boolean>;
  run(ctx: StageContext, unit: U): Promise<UnitResult>;
}
