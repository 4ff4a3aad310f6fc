// What every annotator takes and gives. An annotator turns a mined pair into a relational
// description and the instructions that, with the query image, should retrieve the target.
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

export interface Annotation {
  description: string;
  instructions: string[];
  /** Which annotator wrote it ("template", "openai") and with which model(s). */
  annotator: string;
  model: string;
  prompt_version: string;
  prompt_tokens: number;
  completion_tokens: number;
}

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
}

export function newTally(): AnnotationTally {
  return { endpoints: {}, tokens: {} };
}

export interface Annotator {
  readonly name: string;
  /**
   * `rng` is seeded per pair, so draws (WORD_NUM, demonstrations) are reproducible. `tally`, when
   * given, adds up the requests and tokens. An AnnotationError is the pair's own fault (ledger);
   * any other error is the environment's and fails the unit.
   */
  annotate(pair: PairToAnnotate, rng: Rng, tally?: AnnotationTally): Promise<Annotation>;
}
