// Mine: one unit per catalog part (its images are the queries). It gathers the part's partial
// lists from every shard's search unit into each query's K nearest neighbours per space (the same
// merge as searching every shard in turn), then draws the pairs: a neighbour whose similarity
// lies strictly inside the band may become a target (below: unrelated, above: a near-duplicate).
// A target drawn in several spaces is one pair; its relations are those spaces, `relation` the
// first by mine.relation_priority. Its negatives are the other neighbours of that space, hardest
// first, then those of the other spaces; never the target. The run-wide rules
// (target cap, symmetry, negatives that are near-duplicates of the target) are the select stage's.
import { decodeNpy } from '../artifacts/npy.ts';
import { writeParquet } from '../artifacts/parquet.ts';
import { pairsSchema, type PairRow } from '../artifacts/tables.ts';
import { ENCODER_NAMES, type EncoderName } from '../config/schema.ts';
import { mergeTopK, type Neighbour } from '../knn/hnsw-shard.ts';
import { Rng } from '../util/rng.ts';
import { shardCount } from './shard-plan.ts';
import { addToHistogram, miningSettings, similarityHistogram, type PartMiningStats } from './mining-stats.ts';
import { PartStage } from './part-stage.ts';
import type { DoneMarker, StageContext, UnitResult } from '../core/stage.ts';
import { shared } from './shared-resources.ts';

/** One shard's partial top-(k+1) per row of part `n`, as neighbour lists (none for an unembedded row). */
async function readPartial(ctx: StageContext, encoder: EncoderName, shard: number, n: number): Promise<Neighbour[][]> {
  const idsKey = ctx.layout.searchIds(encoder, shard, n);
  const distKey = ctx.layout.searchDistances(encoder, shard, n);
  const ids = decodeNpy(await ctx.work.read(idsKey), ctx.work.uri(idsKey));
  const dist = decodeNpy(await ctx.work.read(distKey), ctx.work.uri(distKey));
  const [rows, width] = ids.shape;
  return Array.from({ length: rows }, (_, row) => {
    const out: Neighbour[] = [];
    for (let i = row * width; i < (row + 1) * width && ids.data[i] >= 0; i++) out.push({ id: ids.data[i], similarity: 1 - dist.data[i] });
    return out;
  });
}

/** Each row's k nearest neighbours in the space, across every shard, the query itself left out. */
export async function partNeighbours(ctx: StageContext, encoder: EncoderName, n: number): Promise<Neighbour[][]> {
  const manifest = await shared(ctx).manifest();
  const { offset, rows } = manifest.parts.find((p) => p.number === n)!;
  const lists: Neighbour[][][] = Array.from({ length: rows }, () => []);
  for (let shard = 0; shard < shardCount(manifest, ctx.config.index.shard_size); shard++) {
    (await readPartial(ctx, encoder, shard, n)).forEach((list, row) => list.length && lists[row].push(list));
  }
  const k = ctx.config.mine.k;
  return lists.map((perShard, row) =>
    mergeTopK(perShard, k + 1)
      .filter((nb) => nb.id !== offset + row)
      .slice(0, k),
  );
}

export class MineStage extends PartStage {
  readonly name = 'mine';
  readonly after = ['manifest', 'embed', 'search'];
  readonly folder = 'candidates';
  readonly threaded = true;
  decidedBy(ctx: StageContext): Record<string, unknown> {
    return { mine: miningSettings(ctx), 'index.shard_size': ctx.config.index.shard_size, 'run.seed': ctx.config.run.seed };
  }

  doneMarkers(ctx: StageContext, n: number): DoneMarker[] {
    return [{ storage: 'work', key: ctx.layout.candidatesStats(n) }];
  }

  async run(ctx: StageContext, n: number): Promise<UnitResult> {
    const { band, targets_per_space, relation_priority } = ctx.config.mine;
    const [low, high] = band;
    const manifest = await shared(ctx).manifest();
    const { offset, rows } = manifest.parts.find((p) => p.number === n)!;
    const stats: PartMiningStats = {
      queries: 0,
      neighbour_similarity: Object.fromEntries(ENCODER_NAMES.map((e) => [e, similarityHistogram()])) as PartMiningStats['neighbour_similarity'],
      duplicate_pairs_merged: 0,
      near_duplicates: Object.fromEntries(ENCODER_NAMES.map((e) => [e, []])) as unknown as PartMiningStats['near_duplicates'],
    };
    const neighbours = new Map<EncoderName, Neighbour[][]>();
    for (const encoder of ENCODER_NAMES) neighbours.set(encoder, await partNeighbours(ctx, encoder, n));
    const maskKey = ctx.layout.embeddingMask(n);
    const mask = decodeNpy(await ctx.work.read(maskKey), ctx.work.uri(maskKey)).data;
    // Near-duplicate pairs per space, from every shard's search, each once as [lower, higher].
    for (const encoder of ENCODER_NAMES) {
      const seen = new Set<string>();
      for (let shard = 0; shard < shardCount(manifest, ctx.config.index.shard_size); shard++) {
        const key = ctx.layout.searchNearDuplicates(encoder, shard, n);
        const found = decodeNpy(await ctx.work.read(key), ctx.work.uri(key)).data;
        for (let i = 0; i < found.length; i += 2) seen.add(found[i] < found[i + 1] ? `${found[i]},${found[i + 1]}` : `${found[i + 1]},${found[i]}`);
      }
      stats.near_duplicates[encoder] = [...seen].map((e) => e.split(',').map(Number) as [number, number]);
    }

    const pairs: PairRow[] = [];
    for (let row = 0; row < rows; row++) {
      const qId = offset + row;
      if (!mask[row]) continue; // not embedded: in the ledger
      stats.queries++;
      // Draw per space (the paper mines each space on its own), then merge a target drawn twice.
      const drawnBy = new Map<number, EncoderName[]>();
      for (const encoder of ENCODER_NAMES) {
        const list = neighbours.get(encoder)![row];
        for (const nb of list) addToHistogram(stats.neighbour_similarity[encoder], nb.similarity);
        const inBand = list.filter((nb) => nb.similarity > low && nb.similarity < high);
        for (const t of Rng.for(ctx.config.run.seed, 'mine', encoder, qId).sample(inBand, targets_per_space)) {
          const spaces = drawnBy.get(t.id) ?? [];
          if (spaces.length) stats.duplicate_pairs_merged++;
          drawnBy.set(t.id, [...spaces, encoder]);
        }
      }
      for (const [tId, spaces] of drawnBy) {
        const relations = relation_priority.filter((e) => spaces.includes(e));
        const relation = relations[0];
        const list = neighbours.get(relation)![row];
        const rank = list.findIndex((nb) => nb.id === tId);
        // Every eligible negative, hardest first, those of the pair's space before the other spaces'
        // (when the target has many near-duplicates, few of its own space's neighbours may remain);
        // the selection drops near-duplicates of the target and trims to mine.hard_negatives.
        const negatives = [
          ...new Set([
            ...list.filter((nb) => nb.similarity < high).map((nb) => nb.id),
            ...relation_priority.filter((e) => e !== relation).flatMap((e) => neighbours.get(e)![row].map((nb) => nb.id)),
          ]),
        ].filter((id) => id !== tId);
        pairs.push({
          pair_id: `${qId}-${relation}-${tId}`,
          q_id: qId,
          t_id: tId,
          relation,
          relations,
          similarity: list[rank].similarity,
          rank,
          hns: [qId, ...negatives],
        });
      }
    }
    await writeParquet(ctx.work, ctx.layout.candidatesPart(n), pairsSchema, pairs);
    await ctx.work.write(ctx.layout.candidatesStats(n), JSON.stringify(stats));
    return { items: pairs.length, failed: 0 };
  }
}
