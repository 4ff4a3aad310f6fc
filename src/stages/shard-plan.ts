// How the indexes are sharded, for every stage that plans or reads shards (partition, assign,
// route, index, search, recall, mine): how many shards a catalog makes, whether they are cells of
// the embedding space or ranges of ids, and what a complete shard says about itself.
import type { Config, EncoderName } from '../config/schema.ts';
import type { CatalogManifest } from './manifest.ts';

/** Whether shards are cells of the embedding space (searched only near a query) or ranges of ids (every one searched). */
export const routedShards = (config: Config): boolean => config.index.probe_shards > 0;

export interface IndexUnit {
  encoder: EncoderName;
  shard: number;
}

/** A shard's metadata, written last (it marks the unit complete); read through shared(ctx).shardMeta(). */
export interface ShardMeta {
  encoder: EncoderName;
  shard: number;
  /** Global ids [first, end) that the shard covers (routed shards: the whole catalog). */
  first: number;
  end: number;
  count: number;
  dim: number;
  m: number;
  ef_construction: number;
}

export function shardCount(manifest: CatalogManifest, shardSize: number): number {
  return Math.max(1, Math.ceil(manifest.total / shardSize));
}
