// Builds the context stages run in from a config: the three storages and a local cache folder.
import { homedir } from 'node:os';
import path from 'node:path';
import type { Config } from '../config/schema.ts';
import type { StageContext } from '../stages/stage.ts';
import { isUrl } from '../storage/location.ts';
import { openStorage } from '../storage/open.ts';

/** Local cache: MEGAPAIRS_CACHE, else beside a local work folder, else ~/.cache/megapairs. */
function cacheDirFor(config: Config): string {
  if (process.env.MEGAPAIRS_CACHE) return process.env.MEGAPAIRS_CACHE;
  if (!isUrl(config.work)) return path.join(config.work, '.cache');
  return path.join(homedir(), '.cache', 'megapairs', config.run.name);
}

export function createContext(config: Config): StageContext {
  const cacheDir = cacheDirFor(config);
  const storage = { s3: config.s3, cacheDir };
  return {
    config,
    input: openStorage(config.input.path, storage),
    work: openStorage(config.work, storage),
    output: openStorage(config.output, storage),
    cacheDir,
    memo: new Map(),
  };
}
