// What summary.json holds: the contract between the summary (summary.ts computes it from the
// artifacts), the run report page (write-report.ts) and whoever reads the file.
import type { AnnotationSummary } from '../annotate/summary.ts';
import type { MiningSummary } from '../stages/mining-stats.ts';
import type { RunOutcome } from './outcome.ts';

export interface RunSummary {
  images: { catalogued: number; refused: number };
  embeddings: Record<string, number>;
  pairs: Record<string, number>;
  triples: number;
  failures: Record<string, number>;
  seconds: Record<string, number>;
  /** Per stage: its provenance key, whether it reused its artifacts or computed them, and why. */
  stages: Record<string, { key?: string; status?: string; reason?: string; units: number; items: number; failed: number; seconds: number }>;
  /** What the exit code says, decided from the same files (outcome.ts). */
  outcome: RunOutcome;
  /** The annotator's requests, cache hits, errors, tokens and cost (absent for one that sends no requests, as the template annotator). */
  annotation?: AnnotationSummary;
  /** Recall, similarity histograms, target in-degree and what the selection dropped (absent before it ran). */
  mining?: MiningSummary;
}
