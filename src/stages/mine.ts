// Mine: one unit per catalog part (its images are the queries). For each query and each space,
// the K nearest neighbours across every index shard; a neighbour whose similarity lies strictly
// inside the band may become a target (below: unrelated, above: a near-duplicate). The pair's
// relation is the space that found it; its hard negatives are the query itself, then the other
// neighbours that space retrieved, hardest first.
import { writeParquet, type TableSchema } from '../artifacts/parquet.ts';
import { ENCODER_NAMES, type EncoderName } from '../config/schema.ts';
import { loadShard, mergeTopK, shardBytes, type LoadedShard, type Neighbour } from '../knn/hnsw-shard.ts';
import { indexShardBytesRead, indexShardLoads } from '../metrics/registry.ts';
import { LruCache } from '../util/lru.ts';
import { Rng } from '../util/rng.ts';
import { readPartVectors, rowOf } from './embeddings.ts';
import { readShardMeta, shardCount } from './index.ts';
import { manifestOf } from './manifest.ts';
import { PartStage } from './part-stage.ts';
import { memoize, type StageContext, type UnitResult } from './stage.ts';

export interface PairRow {
  pair_id: string;
  q_id: number;
  t_id: number;
  relation: EncoderName;
  similarity: number;
  /** The target's rank among the query's neighbours in that space (0: nearest). */
  rank: number;
  /** Hard negatives as image ids; hns[0] is the query. */
  hns: number[];
}

export const pairsSchema: TableSchema = {
  pair_id: { type: 'UTF8' },
  q_id: { type: 'INT64' },
  t_id: { type: 'INT64' },
  relation: { type: 'UTF8' },
  similarity: { type: 'DOUBLE' },
  rank: { type: 'INT32' },
  hns: { type: 'INT64', repeated: true },
};

/**
 * The encoder's shards, one at a time, those already loaded first: with index.memory_budget_mb
 * below the size of all shards, a unit loads each shard once and the cache keeps the last ones.
 */
async function* eachShard(ctx: StageContext, encoder: EncoderName): AsyncGenerator<LoadedShard> {
  const manifest = await manifestOf(ctx);
  const cache = await memoize(ctx, 'hnsw-shards', async () => new LruCache<LoadedShard>(ctx.config.index.memory_budget_mb * 1024 * 1024));
  const key = (shard: number) => `${encoder}:${shard}`;
  const shards = Array.from({ length: shardCount(manifest, ctx.config.index.shard_size) }, (_, shard) => shard);
  shards.sort((a, b) => Number(cache.has(key(b))) - Number(cache.has(key(a))));
  for (const shard of shards) {
    const meta = await readShardMeta(ctx, { encoder, shard });
    yield await cache.get(
      key(shard),
      () =>
        loadShard(ctx.work, ctx.layout.indexShard(encoder, shard), meta.dim, meta.count, ctx.config.index.ef_search, (bytes) => {
          indexShardLoads.inc({ space: encoder });
          indexShardBytesRead.inc({ space: encoder }, bytes);
        }),
      shardBytes(meta.count, meta.dim, meta.m),
    );
  }
}

export class MineStage extends PartStage {
  readonly name = 'mine';
  readonly after = ['manifest', 'embed', 'index'];
  decidedBy(ctx: StageContext): Record<string, unknown> {
    return { mine: ctx.config.mine, 'index.ef_search': ctx.config.index.ef_search, 'run.seed': ctx.config.run.seed };
  }

  isDone(ctx: StageContext, n: number): Promise<boolean> {
    return ctx.work.exists(ctx.layout.pairsPart(n));
  }

  async run(ctx: StageContext, n: number): Promise<UnitResult> {
    const { k, band, targets_per_space, hard_negatives } = ctx.config.mine;
    const [low, high] = band;
    const manifest = await manifestOf(ctx);
    const offset = manifest.parts.find((p) => p.number === n)!.offset;
    const pairs: PairRow[] = [];
    for (const encoder of ENCODER_NAMES) {
      const queries = await readPartVectors(ctx, encoder, n);
      // Scatter: every query searched in one shard, then the next; gather: merge per query.
      // k + 1: the query finds itself first; it is dropped, not counted.
      const lists: Neighbour[][][] = Array.from({ length: queries.rows }, () => []);
      for await (const shard of eachShard(ctx, encoder)) {
        for (let row = 0; row < queries.rows; row++) if (queries.mask[row]) lists[row].push(shard.search(rowOf(queries, row), k + 1));
      }
      for (let row = 0; row < queries.rows; row++) {
        if (!queries.mask[row]) continue;
        const qId = offset + row;
        const neighbours = mergeTopK(lists[row], k + 1)
          .filter((nb) => nb.id !== qId)
          .slice(0, k);
        const inBand = neighbours.filter((nb) => nb.similarity > low && nb.similarity < high);
        const targets = Rng.for(ctx.config.run.seed, 'mine', encoder, qId).sample(inBand, targets_per_space);
        for (const t of targets) {
          const others = neighbours.filter((nb) => nb.id !== t.id).slice(0, hard_negatives - 1);
          pairs.push({
            pair_id: `${qId}-${encoder}-${t.id}`,
            q_id: qId,
            t_id: t.id,
            relation: encoder,
            similarity: t.similarity,
            rank: neighbours.indexOf(t),
            hns: [qId, ...others.map((o) => o.id)],
          });
        }
      }
    }
    await writeParquet(ctx.work, ctx.layout.pairsPart(n), pairsSchema, pairs);
    return { items: pairs.length, failed: 0 };
  }
}
