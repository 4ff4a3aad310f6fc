// Builds the context stages run in from a config: the three storages, a local cache folder, and
// for a distributed run the limits its processes share (held in its Redis).
import { homedir } from 'node:os';
import path from 'node:path';
import { keyedLayout, type Layout } from '../core/layout.ts';
import type { Config } from '../config/schema.ts';
import type { StageKeys } from '../core/keys.ts';
import { pipelineStages, stageFolders } from '../pipeline.ts';
import type { Stage, StageContext } from '../core/stage.ts';
import { isUrl } from '../config/location.ts';
import { openStorage } from '../storage/open.ts';
import { rememberSecrets } from '../secrets/redact.ts';
import { redisSharedLimits } from './distributed/shared-limits.ts';

/** Local cache: MEGAPAIRS_CACHE, else beside a local work folder, else ~/.cache/megapairs. */
function cacheDirFor(config: Config): string {
  if (process.env.MEGAPAIRS_CACHE) return process.env.MEGAPAIRS_CACHE;
  if (!isUrl(config.work)) return path.join(config.work, '.cache');
  return path.join(homedir(), '.cache', 'megapairs', config.run.name);
}

/** A context for the config; its keys come from resolveRun (local) or the run's record (workers). */
/** `stages`: the pipeline's registry, unless a caller (a test, an embedding program) runs its own list. */
export function createContext(config: Config, keys?: StageKeys, stages: readonly Stage<any>[] = pipelineStages()): StageContext {
  rememberSecrets(config); // whatever this context's stages write passes through redact()
  const cacheDir = cacheDirFor(config);
  const storage = { s3: config.s3, cacheDir };
  const folders = stageFolders(stages);
  // The layout of the current keys, made again when they change.
  let current: { keys: StageKeys; layout: Layout } | undefined;
  return {
    config,
    input: openStorage(config.input.path, storage),
    work: openStorage(config.work, storage),
    output: openStorage(config.output, storage),
    cacheDir,
    stages,
    keys,
    // The runner decides which limits are shared, so no stage asks which runner it is in.
    sharedLimits: config.runner.kind === 'distributed' ? redisSharedLimits(config) : undefined,
    get layout(): Layout {
      if (!this.keys) throw new Error('artifact keys are not resolved yet: resolve the run first');
      if (current?.keys !== this.keys) current = { keys: this.keys, layout: keyedLayout(this.keys, folders) };
      return current.layout;
    },
  };
}
