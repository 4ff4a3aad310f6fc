// Recall: one unit per space, in every run. A seeded sample of mine.recall_queries images is
// searched by the index (every shard, or its index.probe_shards nearest, merged, as mining does) and exactly (brute force over every
// embedded vector of the space); recall@K is the share of the exact K nearest the index found,
// overall and among those inside the band (the neighbours that can become targets). Each shard
// and each embeddings part is read once.
import { countShardRead } from '../metrics/registry.ts';
import { ENCODER_NAMES, type EncoderName } from '../config/schema.ts';
import { ExactTopK } from '../knn/exact.ts';
import { loadShard, mergeTopK, type Neighbour } from '../knn/hnsw-shard.ts';
import { Rng } from '../util/rng.ts';
import { readPartVectors, rowOf } from './embeddings.ts';
import { shardCount } from './index-build.ts';
import { locate } from './manifest.ts';
import { routedShards } from './partition.ts';
import type { RecallStats } from './mining-stats.ts';
import type { Stage, StageContext, UnitResult } from './stage.ts';

export class RecallStage implements Stage<EncoderName> {
  readonly name = 'recall';
  readonly after = ['manifest', 'embed', 'partition', 'index'];
  decidedBy(ctx: StageContext): Record<string, unknown> {
    const { k, band, recall_queries } = ctx.config.mine;
    return {
      'mine.k': k,
      'mine.band': band,
      'mine.recall_queries': recall_queries,
      'index.ef_search': ctx.config.index.ef_search,
      'index.probe_shards': ctx.config.index.probe_shards,
      'run.seed': ctx.config.run.seed,
    };
  }
  readonly threaded = true;

  async plan(): Promise<EncoderName[]> {
    return [...ENCODER_NAMES];
  }
  unitId(e: EncoderName): string {
    return e;
  }
  isDone(ctx: StageContext, e: EncoderName): Promise<boolean> {
    return ctx.work.exists(ctx.layout.recall(e));
  }

  async run(ctx: StageContext, encoder: EncoderName): Promise<UnitResult> {
    const { k, band, recall_queries } = ctx.config.mine;
    const manifest = await ctx.shared.manifest();
    // The sample: distinct ids drawn (seeded) from the catalog; those not embedded are left out.
    const rng = Rng.for(ctx.config.run.seed, 'recall', encoder);
    const drawn = new Set<number>();
    while (drawn.size < Math.min(recall_queries, manifest.total)) drawn.add(rng.int(0, manifest.total - 1));
    const byPart = new Map<number, number[]>();
    for (const id of [...drawn].sort((a, b) => a - b)) {
      const n = locate(manifest, id).number;
      (byPart.get(n) ?? byPart.set(n, []).get(n)!).push(id);
    }
    const ids: number[] = [];
    const vectors: Float32Array[] = [];
    for (const [n, partIds] of byPart) {
      const v = await readPartVectors(ctx, encoder, n);
      const offset = manifest.parts.find((p) => p.number === n)!.offset;
      for (const id of partIds) if (v.mask[id - offset]) ids.push(id), vectors.push(rowOf(v, id - offset).slice());
    }

    const lists: Neighbour[][][] = ids.map(() => []);
    const router = routedShards(ctx.config) ? await ctx.shared.shardRouter(encoder) : undefined;
    const shards = shardCount(manifest, ctx.config.index.shard_size);
    const probed = vectors.map((q) => new Set(router ? router.route(q, ctx.config.index.probe_shards) : Array.from({ length: shards }, (_, s) => s)));
    for (let s = 0; s < shards; s++) {
      const meta = await ctx.shared.shardMeta({ encoder, shard: s });
      const shard = await loadShard(ctx.work, ctx.layout.indexShard(encoder, s), meta.dim, meta.count, ctx.config.index.ef_search, countShardRead(encoder));
      try {
        vectors.forEach((q, i) => probed[i].has(s) && lists[i].push(shard.search(q, k + 1)));
      } finally {
        shard.release();
      }
    }
    const exact = new ExactTopK(vectors, k + 1);
    for (const p of manifest.parts) {
      const v = await readPartVectors(ctx, encoder, p.number);
      for (let row = 0; row < v.rows; row++) if (v.mask[row]) exact.add(p.offset + row, rowOf(v, row));
    }

    let found = 0;
    let wanted = 0;
    let foundInBand = 0;
    let inBand = 0;
    ids.forEach((id, i) => {
      const index = new Set(
        mergeTopK(lists[i], k + 1)
          .filter((nb) => nb.id !== id)
          .slice(0, k)
          .map((nb) => nb.id),
      );
      for (const nb of exact
        .result(i)
        .filter((nb) => nb.id !== id)
        .slice(0, k)) {
        wanted++;
        if (index.has(nb.id)) found++;
        if (nb.similarity > band[0] && nb.similarity < band[1]) {
          inBand++;
          if (index.has(nb.id)) foundInBand++;
        }
      }
    });
    const stats: RecallStats = {
      k,
      queries: ids.length,
      at_k: wanted ? found / wanted : 1,
      in_band: inBand ? foundInBand / inBand : 1,
      in_band_neighbours: inBand,
    };
    await ctx.work.write(ctx.layout.recall(encoder), JSON.stringify(stats, null, 1));
    return { items: ids.length, failed: 0 };
  }
}
