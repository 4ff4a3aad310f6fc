// The optional summary.json sections the report draws (the contract in the project notes). Each is
// computed from artifacts by summary.ts when the run measured it; the report draws
// what is there and says "not measured in this run" for the rest.
import type { RunSummary } from './run-summary.ts';

/** counts[i] items fell in [edges[i], edges[i + 1]). */
export interface Histogram {
  edges: number[];
  counts: number[];
}

export interface StageSection {
  key?: string;
  status?: 'computed' | 'reused' | 'partly reused' | 'not needed';
  reason?: string;
  units?: number;
  items?: number;
  failed?: number;
  seconds?: number;
}

export interface SpaceMining {
  neighbour_similarity?: Histogram;
  target_similarity?: Histogram;
  pairs?: number;
  recall?: { k: number; queries: number; at_k: number; in_band: number; at_k_by_id: number; in_band_by_id: number };
}

export interface MiningSection {
  spaces?: Record<string, SpaceMining>;
  target_in_degree?: Histogram & { max: number; mean: number };
  queries_without_pair?: number;
  duplicate_pairs_merged?: number;
  near_duplicate_clusters?: number;
}

export interface AnnotationSection {
  endpoints?: Record<string, { requests: number; cached: number; errors: Record<string, number> }>;
  tokens?: Record<string, { prompt: number; completion: number }>;
  cost_usd?: number;
}

export interface OutcomeSection {
  exit_code: number;
  complete: boolean;
  failure_share?: Record<string, number>;
  message?: string;
}

/** summary.json as the report reads it: the base summary and whichever sections the run wrote. */
export type ReportSummary = Partial<RunSummary> & {
  stages?: Record<string, StageSection>;
  outcome?: OutcomeSection;
  mining?: MiningSection;
  annotation?: AnnotationSection;
};
