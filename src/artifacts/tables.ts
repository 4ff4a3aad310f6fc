// The tables stages hand each other: each artifact's row type and Parquet schema, declared once
// here for the stage that writes it and every stage (and the summary) that reads it.
import type { EncoderName } from '../config/schema.ts';
import type { TableSchema } from './parquet.ts';

/** An image the catalog accepted: where its bytes are and its caption. */
export interface CatalogRow {
  /** Row number within the part; the global image id is the part's offset plus this. */
  row: number;
  key: string;
  /** The image's name in outputs: "<shard stem>/<member>", e.g. "00003/000030017.png". */
  image: string;
  tar: string;
  /** The tar's version when catalogued (storage.ts ObjectVersion): reads of other bytes are refused. */
  version: string;
  offset: number;
  length: number;
  format: string;
  caption: string;
  width: number;
  height: number;
}

export const catalogSchema: TableSchema = {
  row: { type: 'INT64' },
  key: { type: 'UTF8' },
  image: { type: 'UTF8' },
  tar: { type: 'UTF8' },
  version: { type: 'UTF8' },
  offset: { type: 'INT64' },
  length: { type: 'INT64' },
  format: { type: 'UTF8' },
  caption: { type: 'UTF8' },
  width: { type: 'INT32' },
  height: { type: 'INT32' },
};

/** A mined (query, target) pair: one row per pair, whichever spaces found it. */
export interface PairRow {
  pair_id: string;
  q_id: number;
  t_id: number;
  /** The first of `relations` by mine.relation_priority: the space whose similarity, rank and negatives the row carries. */
  relation: EncoderName;
  /** Every space that drew this target for this query. */
  relations: EncoderName[];
  similarity: number;
  /** The target's rank among the query's neighbours in that space (0: nearest). */
  rank: number;
  /** Hard negatives as image ids; hns[0] is the query. In candidates: every eligible negative, before the selection trims them. */
  hns: number[];
}

/** Pairs parts and candidates parts share it. */
export const pairsSchema: TableSchema = {
  pair_id: { type: 'UTF8' },
  q_id: { type: 'INT64' },
  t_id: { type: 'INT64' },
  relation: { type: 'UTF8' },
  relations: { type: 'UTF8', repeated: true },
  similarity: { type: 'DOUBLE' },
  rank: { type: 'INT32' },
  hns: { type: 'INT64', repeated: true },
};

/** A pair's relational description and instructions, from the annotator (annotate/annotator.ts: Annotation). */
export interface AnnotationRow {
  pair_id: string;
  description: string;
  instructions: string[];
  /** Which annotator wrote it ("template", "openai") and with which model(s). */
  annotator: string;
  model: string;
  prompt_version: string;
  prompt_tokens: number;
  completion_tokens: number;
}

export const annotationsSchema: TableSchema = {
  pair_id: { type: 'UTF8' },
  description: { type: 'UTF8' },
  instructions: { type: 'UTF8', repeated: true },
  annotator: { type: 'UTF8' },
  model: { type: 'UTF8' },
  prompt_version: { type: 'UTF8' },
  prompt_tokens: { type: 'INT64' },
  completion_tokens: { type: 'INT64' },
};

/** The product: one training triple. */
export interface TripleRow {
  q_img: string;
  q_text: string[];
  t_img: string;
  hns: string[];
  relation: string;
  similarity: number;
  description: string;
  annotator: string;
  model: string;
  prompt_version: string;
  pair_id: string;
  q_id: number;
  t_id: number;
  q_caption: string;
  t_caption: string;
}

export const triplesSchema: TableSchema = {
  q_img: { type: 'UTF8' },
  q_text: { type: 'UTF8', repeated: true },
  t_img: { type: 'UTF8' },
  hns: { type: 'UTF8', repeated: true },
  relation: { type: 'UTF8' },
  similarity: { type: 'DOUBLE' },
  description: { type: 'UTF8' },
  annotator: { type: 'UTF8' },
  model: { type: 'UTF8' },
  prompt_version: { type: 'UTF8' },
  pair_id: { type: 'UTF8' },
  q_id: { type: 'INT64' },
  t_id: { type: 'INT64' },
  q_caption: { type: 'UTF8' },
  t_caption: { type: 'UTF8' },
};
