// What every annotator takes and gives. An annotator turns a mined pair into a relational
// description and the instructions that, with the query image, should retrieve the target. The
// annotate stage hands it a unit's pairs at once (annotateUnit): a backend that answers pair by
// pair runs them through annotateEachPair (each-pair.ts), one that works per unit (a batch file)
// takes the whole unit. Its backend (backend.ts) opens it once per process.
import type { AnnotationRow } from '../artifacts/tables.ts';
import type { EncoderName } from '../config/schema.ts';
import type { Rng } from '../util/rng.ts';

export interface PairImage {
  /** Stable image id, e.g. "00003/000030017.png". */
  key: string;
  caption: string;
  /** The image's encoded bytes (PNG/JPEG/WebP), fetched only when an annotator needs them. */
  bytes(): Promise<Buffer>;
}

export interface PairToAnnotate {
  pairId: string;
  /** The embedding space that found the pair. */
  relation: EncoderName;
  similarity: number;
  query: PairImage;
  target: PairImage;
}

/** What an annotator writes for a pair: the annotations table's row without the pair's id. */
export type Annotation = Omit<AnnotationRow, 'pair_id'>;

/** A pair that could not be annotated: the reason goes to the failures ledger. */
export class AnnotationError extends Error {
  constructor(
    /** Short, stable reason code for counting ("malformed_description", "http_error", "image_error", ...). */
    readonly reason: string,
    message: string,
  ) {
    super(message);
    this.name = 'AnnotationError';
  }
}

/** What a unit's annotations cost: requests per endpoint (sent and read from the cache), tokens per model. */
export interface AnnotationTally {
  endpoints: Record<string, { requests: number; cached: number; errors: Record<string, number> }>;
  tokens: Record<string, { prompt: number; completion: number }>;
  /** A backend that sends by batch: the unit's batches, their states and times. */
  batches?: UnitBatch[];
}

/** One batch a unit waited for: submitted by it, or adopted from an earlier (killed) run. */
export interface UnitBatch {
  batch_id?: string;
  file_id: string;
  /** The step whose requests it holds ("describe", "instruct") and the round of the unit's requests it answered. */
  step: string;
  round: number;
  model: string;
  /** Requests in its file, and those of the unit. */
  requests: number;
  ours: number;
  adopted: boolean;
  status: string;
  /** Each state it went through, with when it entered it (server clock where the batch says). */
  transitions: { status: string; at: string }[];
  request_counts?: { total: number; completed: number; failed: number };
}

export function newTally(): AnnotationTally {
  return { endpoints: {}, tokens: {} };
}

/** A pair of a unit, with the rng the stage seeded for it: draws from it make the pair's requests reproducible. */
export interface UnitPair extends PairToAnnotate {
  rng: Rng;
}

/** What the stage gives an annotator along with a unit's pairs. */
export interface UnitIO {
  /** The unit's id ("part-00003"): a backend that keeps files per unit (a batch) names them by it. */
  unit: string;
  /** Called once per pair as it is settled (annotated or refused), for the progress line. */
  pairDone(): void;
}

/** A unit's annotations: per pair, in the order given, its annotation or its own fault; and what they cost. */
export interface UnitAnnotations {
  results: Array<Annotation | AnnotationError>;
  tally: AnnotationTally;
}

export interface Annotator {
  readonly name: string;
  /**
   * Annotates a unit's pairs. A pair's own fault is its AnnotationError in `results` (the ledger);
   * a fault of the environment (an endpoint down, a wrong key) is thrown: the unit fails and is
   * retried, and no pair is ledgered for it.
   */
  annotateUnit(pairs: readonly UnitPair[], io: UnitIO): Promise<UnitAnnotations>;
}

/** An annotator that answers pair by pair: annotateEachPair runs a unit through `annotate`. */
export interface PairAnnotator extends Annotator {
  /**
   * `rng` is seeded per pair, so draws (WORD_NUM, demonstrations) are reproducible. `tally`, when
   * given, adds up the requests and tokens. An AnnotationError is the pair's own fault (ledger);
   * any other error is the environment's and fails the unit.
   */
  annotate(pair: PairToAnnotate, rng: Rng, tally?: AnnotationTally): Promise<Annotation>;
}
