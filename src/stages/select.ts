// Select: one unit over the whole run, after every part is mined. It applies the rules no part can
// apply alone, reading each candidates part once, in part order: an image is the target of at most
// mine.max_pairs_per_target pairs (hubs), B->A is dropped when A->B was kept unless mine.symmetric,
// and a hard negative is never a near-duplicate of the target or the query (at or above the band's
// upper bound in the pair's space). It writes the pairs parts and the run's mining statistics. Memory: a few bytes per image
// (in-degree, near-duplicate clusters) plus the near-duplicate edges.
import { readParquet, writeParquet } from '../artifacts/parquet.ts';
import { pairsSchema, type PairRow } from '../artifacts/tables.ts';
import { ENCODER_NAMES } from '../config/schema.ts';
import {
  addHistograms,
  addToHistogram,
  miningSettings,
  similarityHistogram,
  type Histogram,
  type MiningSummary,
  type PartMiningStats,
} from './mining-stats.ts';
import type { DoneMarker, Stage, StageContext, UnitResult } from '../core/stage.ts';
import { shared } from './shared-resources.ts';

/** Near-duplicate clusters: connected components of the near-duplicate edges (union-find). */
class Clusters {
  private readonly parent: Int32Array;
  private readonly members = new Set<number>();
  constructor(size: number) {
    this.parent = Int32Array.from({ length: size }, (_, i) => i);
  }
  private root(a: number): number {
    while (this.parent[a] !== a) a = this.parent[a] = this.parent[this.parent[a]];
    return a;
  }
  join(a: number, b: number): void {
    this.members.add(a).add(b);
    this.parent[this.root(a)] = this.root(b);
  }
  /** Clusters (of two images or more: only joined images are members). */
  count(): number {
    return new Set([...this.members].map((m) => this.root(m))).size;
  }
}

function inDegreeHistogram(inDegree: Uint32Array): MiningSummary['target_in_degree'] {
  let max = 0;
  let sum = 0;
  let targets = 0;
  for (const d of inDegree) if (d > 0) (max = Math.max(max, d)), (sum += d), targets++;
  const top = Math.min(max, 50); // one bin per in-degree; the last also holds the rare higher ones
  const h: Histogram = { edges: Array.from({ length: top + 1 }, (_, i) => i + 1), counts: new Array(top).fill(0) };
  for (const d of inDegree) if (d > 0) h.counts[Math.min(d, top) - 1]++;
  return { ...h, max, mean: targets ? sum / targets : 0 };
}

export class SelectStage implements Stage<'select'> {
  readonly name = 'select';
  readonly after = ['manifest', 'mine'];
  readonly folder = 'pairs';
  decidedBy(ctx: StageContext): Record<string, unknown> {
    return { mine: miningSettings(ctx) };
  }

  async plan(): Promise<'select'[]> {
    return ['select'];
  }
  unitId(): string {
    return 'select';
  }
  doneMarkers(ctx: StageContext): DoneMarker[] {
    return [{ storage: 'work', key: ctx.layout.miningStats() }];
  }

  async run(ctx: StageContext): Promise<UnitResult> {
    const { hard_negatives, max_pairs_per_target, symmetric } = ctx.config.mine;
    const manifest = await shared(ctx).manifest();
    const total = manifest.total;
    const edge = (a: number, b: number) => (a < b ? a * total + b : b * total + a);

    const nearDuplicates = new Map(ENCODER_NAMES.map((e) => [e, new Set<number>()]));
    const clusters = new Map(ENCODER_NAMES.map((e) => [e, new Clusters(total)]));
    const anySpace = new Clusters(total);
    const neighbourSimilarity = Object.fromEntries(ENCODER_NAMES.map((e) => [e, similarityHistogram()]));
    let queries = 0;
    let merged = 0;
    for (const { number } of manifest.parts) {
      const s = JSON.parse((await ctx.work.read(ctx.layout.candidatesStats(number))).toString('utf8')) as PartMiningStats;
      queries += s.queries;
      merged += s.duplicate_pairs_merged;
      for (const e of ENCODER_NAMES) {
        addHistograms(neighbourSimilarity[e], s.neighbour_similarity[e]);
        for (const [a, b] of s.near_duplicates[e]) {
          nearDuplicates.get(e)!.add(edge(a, b));
          clusters.get(e)!.join(a, b);
          anySpace.join(a, b);
        }
      }
    }

    const inDegree = new Uint32Array(total);
    const keptForward = new Set<number>(); // q * total + t of kept pairs with t > q, when not symmetric
    const targetSimilarity = Object.fromEntries(ENCODER_NAMES.map((e) => [e, similarityHistogram()]));
    const pairsPerSpace: Record<string, number> = Object.fromEntries(ENCODER_NAMES.map((e) => [e, 0]));
    const dropped = { over_target_cap: 0, reverse_of_kept: 0, near_duplicate_negatives: 0 };
    let queriesWithPair = 0;
    let kept = 0;
    for (const { number } of manifest.parts) {
      const pairs: PairRow[] = [];
      const withPair = new Set<number>();
      for (const c of await readParquet<PairRow>(ctx.work, ctx.layout.candidatesPart(number), pairsSchema)) {
        if (max_pairs_per_target > 0 && inDegree[c.t_id] >= max_pairs_per_target) {
          dropped.over_target_cap++;
          continue;
        }
        if (!symmetric && c.t_id < c.q_id && keptForward.has(c.t_id * total + c.q_id)) {
          dropped.reverse_of_kept++;
          continue;
        }
        // The hardest negatives that are no near-duplicate of either image (counting those passed over).
        const hns = [c.q_id];
        for (const id of c.hns.slice(1)) {
          if (hns.length >= hard_negatives) break;
          const near = nearDuplicates.get(c.relation)!;
          if (near.has(edge(id, c.t_id)) || near.has(edge(id, c.q_id))) dropped.near_duplicate_negatives++;
          else hns.push(id);
        }
        pairs.push({ ...c, hns });
        inDegree[c.t_id]++;
        if (!symmetric && c.t_id > c.q_id) keptForward.add(c.q_id * total + c.t_id);
        addToHistogram(targetSimilarity[c.relation], c.similarity);
        pairsPerSpace[c.relation]++;
        withPair.add(c.q_id);
      }
      queriesWithPair += withPair.size;
      kept += pairs.length;
      await writeParquet(ctx.work, ctx.layout.pairsPart(number), pairsSchema, pairs);
    }

    const summary: Omit<MiningSummary, 'spaces'> & { spaces: Record<string, Omit<MiningSummary['spaces'][string], 'recall'>> } = {
      spaces: Object.fromEntries(
        ENCODER_NAMES.map((e) => [
          e,
          {
            neighbour_similarity: neighbourSimilarity[e],
            target_similarity: targetSimilarity[e],
            pairs: pairsPerSpace[e],
            near_duplicate_clusters: clusters.get(e)!.count(),
          },
        ]),
      ),
      target_in_degree: inDegreeHistogram(inDegree),
      queries_without_pair: queries - queriesWithPair,
      duplicate_pairs_merged: merged,
      near_duplicate_clusters: anySpace.count(),
      dropped,
    };
    await ctx.work.write(ctx.layout.miningStats(), JSON.stringify(summary, null, 1));
    return { items: kept, failed: 0 };
  }
}
