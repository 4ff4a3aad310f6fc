// Recall: one unit per space, in every run. A seeded sample of mine.recall_queries images is
// searched by the index (every shard, or its index.probe_shards nearest, merged, as mining does) and exactly (brute force over every
// embedded vector of the space); recall@K is the share of the exact K nearest the index found,
// overall and among those inside the band (the neighbours that can become targets). Each shard
// and each embeddings part is read once.
//
// Ties count as found, as ANN benchmarks measure recall: identical vectors (a caption repeated in
// the corpus, a re-uploaded picture) tie, and the index and the exact search break ties at the
// K-th place differently, so an id-based count calls an equally good answer a miss. A returned
// neighbour counts when its similarity, computed by the same arithmetic as the exact search's, is
// at least the exact K-th's less TIE_TOLERANCE. The id-based figures are kept beside them.
import { countShardRead } from '../metrics/registry.ts';
import { ENCODER_NAMES, type EncoderName } from '../config/schema.ts';
import { ExactTopK } from '../knn/exact.ts';
import { loadShard, mergeTopK, type Neighbour } from '../knn/hnsw-shard.ts';
import { Rng } from '../util/rng.ts';
import { readPartVectors, rowOf } from './embeddings.ts';
import { shardCount } from './shard-plan.ts';
import { locate } from './manifest.ts';
import { routedShards } from './shard-plan.ts';
import type { RecallStats } from './mining-stats.ts';
import type { DoneMarker, Stage, StageContext, UnitResult } from '../core/stage.ts';
import { shared } from './shared-resources.ts';

/** Float tolerance for "at least as similar as the exact K-th" (both sides use the same dot product). */
export const TIE_TOLERANCE = 1e-6;

export class RecallStage implements Stage<EncoderName> {
  readonly name = 'recall';
  readonly after = ['manifest', 'embed', 'partition', 'index'];
  readonly folder = 'recall';
  decidedBy(ctx: StageContext): Record<string, unknown> {
    const { k, band, recall_queries } = ctx.config.mine;
    return {
      'mine.k': k,
      'mine.band': band,
      'mine.recall_queries': recall_queries,
      'index.ef_search': ctx.config.index.ef_search,
      'index.probe_shards': ctx.config.index.probe_shards,
      'run.seed': ctx.config.run.seed,
      // What the artifact counts, so figures measured the older, id-only way are not read as these.
      'recall.counts': 'ids and ties',
    };
  }
  readonly threaded = true;

  async plan(): Promise<EncoderName[]> {
    return [...ENCODER_NAMES];
  }
  unitId(e: EncoderName): string {
    return e;
  }
  doneMarkers(ctx: StageContext, e: EncoderName): DoneMarker[] {
    return [{ storage: 'work', key: ctx.layout.recall(e) }];
  }

  async run(ctx: StageContext, encoder: EncoderName): Promise<UnitResult> {
    const { k, band, recall_queries } = ctx.config.mine;
    const manifest = await shared(ctx).manifest();
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
    const router = routedShards(ctx.config) ? await shared(ctx).shardRouter(encoder) : undefined;
    const shards = shardCount(manifest, ctx.config.index.shard_size);
    const probed = vectors.map((q) => new Set(router ? router.route(q, ctx.config.index.probe_shards) : Array.from({ length: shards }, (_, s) => s)));
    for (let s = 0; s < shards; s++) {
      const meta = await shared(ctx).shardMeta({ encoder, shard: s });
      const shard = await loadShard(ctx.work, ctx.layout.indexShard(encoder, s), meta.dim, meta.count, ctx.config.index.ef_search, countShardRead(encoder));
      try {
        vectors.forEach((q, i) => probed[i].has(s) && lists[i].push(shard.search(q, k + 1)));
      } finally {
        shard.release();
      }
    }
    // The index's own top k per query (the query itself left out), whose similarities the exact
    // pass recomputes: hnswlib's distances come from other arithmetic and would blur exact ties.
    const returned = ids.map((id, i) =>
      mergeTopK(lists[i], k + 1)
        .filter((nb) => nb.id !== id)
        .slice(0, k)
        .map((nb) => nb.id),
    );
    const askedBy = new Map<number, number[]>();
    returned.forEach((list, i) => {
      for (const id of list) (askedBy.get(id) ?? askedBy.set(id, []).get(id)!).push(i);
    });
    const returnedSimilarity = ids.map(() => new Map<number, number>());
    const exact = new ExactTopK(vectors, k + 1);
    for (const p of manifest.parts) {
      const v = await readPartVectors(ctx, encoder, p.number);
      for (let row = 0; row < v.rows; row++) {
        if (!v.mask[row]) continue;
        const id = p.offset + row;
        const vector = rowOf(v, row);
        exact.add(id, vector);
        for (const q of askedBy.get(id) ?? []) returnedSimilarity[q].set(id, ExactTopK.similarity(vectors[q], vector));
      }
    }

    const inBand = (s: number) => s > band[0] && s < band[1];
    const tally = { wanted: 0, found: 0, foundTied: 0, inBand: 0, foundInBand: 0, foundInBandTied: 0 };
    ids.forEach((id, i) => {
      const truth = exact
        .result(i)
        .filter((nb) => nb.id !== id)
        .slice(0, k);
      if (truth.length === 0) return;
      const byId = new Set(returned[i]);
      const kth = truth[truth.length - 1].similarity - TIE_TOLERANCE;
      // Returned neighbours as good as the exact K-th: overall, and those inside the band.
      const good = returned[i].map((n) => returnedSimilarity[i].get(n)!).filter((s) => s >= kth);
      const truthInBand = truth.filter((nb) => inBand(nb.similarity)).length;
      tally.wanted += truth.length;
      tally.found += truth.filter((nb) => byId.has(nb.id)).length;
      tally.foundTied += Math.min(good.length, truth.length);
      tally.inBand += truthInBand;
      tally.foundInBand += truth.filter((nb) => inBand(nb.similarity) && byId.has(nb.id)).length;
      tally.foundInBandTied += Math.min(good.filter(inBand).length, truthInBand);
    });
    const share = (found: number, of: number) => (of ? found / of : 1);
    const stats: RecallStats = {
      k,
      queries: ids.length,
      at_k: share(tally.foundTied, tally.wanted),
      in_band: share(tally.foundInBandTied, tally.inBand),
      at_k_by_id: share(tally.found, tally.wanted),
      in_band_by_id: share(tally.foundInBand, tally.inBand),
      in_band_neighbours: tally.inBand,
    };
    await ctx.work.write(ctx.layout.recall(encoder), JSON.stringify(stats, null, 1));
    return { items: ids.length, failed: 0 };
  }
}
