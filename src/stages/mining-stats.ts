// Mining statistics for people: similarity histograms per space, target in-degree, recall, the
// pairs the selection merged or dropped. Parts write theirs as small JSON sidecars, the selection
// adds them up, and summary.json's `mining` section reads the result back from the artifacts.
import { ENCODER_NAMES, type EncoderName } from '../config/schema.ts';
import type { StageContext } from '../core/stage.ts';

/** counts[i] holds values in [edges[i], edges[i+1]); the last bin also holds its upper edge. */
export interface Histogram {
  edges: number[];
  counts: number[];
}

/** Cosine similarity: one bin below 0, then 0.05 wide up to 1. */
export function similarityHistogram(): Histogram {
  const edges = [-1, ...Array.from({ length: 21 }, (_, i) => Math.round(i * 5) / 100)];
  return { edges, counts: new Array(edges.length - 1).fill(0) };
}

export function addToHistogram(h: Histogram, value: number, times = 1): void {
  let i = h.edges.length - 2;
  while (i > 0 && value < h.edges[i]) i--;
  h.counts[i] += times;
}

export function addHistograms(into: Histogram, from: Histogram): void {
  from.counts.forEach((c, i) => (into.counts[i] += c));
}

/** What the mine stage records per part (candidatesStats). */
export interface PartMiningStats {
  /** Queries of the part (embedded rows). */
  queries: number;
  neighbour_similarity: Record<EncoderName, Histogram>;
  /** Pairs a second space drew again for the same (query, target), merged into one row. */
  duplicate_pairs_merged: number;
  /** Per space, the pairs at or above the band's upper bound found by the search, as [lower id, higher id]. */
  near_duplicates: Record<EncoderName, Array<[number, number]>>;
}

export interface RecallStats {
  k: number;
  queries: number;
  /** Share of the exact top-k the index found, a neighbour tied with the exact k-th counting as found. */
  at_k: number;
  /** The same among the exact top-k inside the band (the possible targets). */
  in_band: number;
  /** at_k counted by ids only: a tie the index broke the other way counts as a miss. */
  at_k_by_id: number;
  /** in_band counted by ids only. */
  in_band_by_id: number;
  in_band_neighbours: number;
}

/** summary.json's `mining` section (the contract in COMMON.md), plus what the selection dropped. */
export interface MiningSummary {
  spaces: Record<
    string,
    { neighbour_similarity: Histogram; target_similarity: Histogram; pairs: number; near_duplicate_clusters: number; recall: RecallStats }
  >;
  target_in_degree: Histogram & { max: number; mean: number };
  queries_without_pair: number;
  duplicate_pairs_merged: number;
  /** Clusters of near-duplicates (connected by a similarity at or above the band in any space). */
  near_duplicate_clusters: number;
  dropped: { over_target_cap: number; reverse_of_kept: number; near_duplicate_negatives: number };
}

/** The selection's statistics with each space's recall: summary.json's `mining` section. */
/** The run's mining statistics, or undefined while the selection has not run (a run that stopped early). */
export async function readMiningSummary(ctx: StageContext): Promise<MiningSummary | undefined> {
  const work = ctx.work;
  if (!(await work.exists(ctx.layout.miningStats()))) return undefined;
  const s = JSON.parse((await work.read(ctx.layout.miningStats())).toString('utf8')) as Omit<MiningSummary, 'spaces'> & {
    spaces: Record<string, Omit<MiningSummary['spaces'][string], 'recall'>>;
  };
  const spaces: MiningSummary['spaces'] = {};
  for (const e of ENCODER_NAMES) {
    spaces[e] = { ...s.spaces[e], recall: JSON.parse((await work.read(ctx.layout.recall(e))).toString('utf8')) as RecallStats };
  }
  return { ...s, spaces };
}

/**
 * The `mine` settings that decide candidates and pairs: all but how search units group query
 * parts (query_parts_per_unit: pacing) and how many queries recall samples (recall_queries:
 * recall's own artifact), so changing those recomputes neither mining nor what follows it.
 */
export function miningSettings(ctx: StageContext): Omit<StageContext['config']['mine'], 'query_parts_per_unit' | 'recall_queries'> {
  const { query_parts_per_unit, recall_queries, ...settings } = ctx.config.mine;
  return settings;
}
