// Builds the context stages run in from a config: the three storages and a local cache folder.
import { homedir } from 'node:os';
import path from 'node:path';
import { keyedLayout, type Layout } from '../artifacts/layout.ts';
import type { Config } from '../config/schema.ts';
import type { StageKeys } from '../provenance/stage-keys.ts';
import { SharedResources } from '../stages/shared-resources.ts';
import type { StageContext } from '../stages/stage.ts';
import { isUrl } from '../storage/location.ts';
import { openStorage } from '../storage/open.ts';
import { rememberSecrets } from '../secrets/redact.ts';

/** Local cache: MEGAPAIRS_CACHE, else beside a local work folder, else ~/.cache/megapairs. */
function cacheDirFor(config: Config): string {
  if (process.env.MEGAPAIRS_CACHE) return process.env.MEGAPAIRS_CACHE;
  if (!isUrl(config.work)) return path.join(config.work, '.cache');
  return path.join(homedir(), '.cache', 'megapairs', config.run.name);
}

/** A context for the config; its keys come from resolveRun (local) or the run's record (workers). */
export function createContext(config: Config, keys?: StageKeys): StageContext {
  rememberSecrets(config); // whatever this context's stages write passes through redact()
  const cacheDir = cacheDirFor(config);
  const storage = { s3: config.s3, cacheDir };
  // The layout and the shared resources of the current keys, made again together when they change.
  let current: { keys: StageKeys; layout: Layout; shared: SharedResources } | undefined;
  const currentOf = (ctx: StageContext) => {
    if (!ctx.keys) throw new Error('artifact keys are not resolved yet: resolve the run first');
    if (current?.keys !== ctx.keys) {
      const layout = keyedLayout(ctx.keys);
      current = { keys: ctx.keys, layout, shared: new SharedResources(ctx, layout) };
    }
    return current;
  };
  return {
    config,
    input: openStorage(config.input.path, storage),
    work: openStorage(config.work, storage),
    output: openStorage(config.output, storage),
    cacheDir,
    keys,
    get layout(): Layout {
      return currentOf(this).layout;
    },
    get shared(): SharedResources {
      return currentOf(this).shared;
    },
  };
}
