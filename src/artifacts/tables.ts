// The tables stages hand each other: each artifact's row type and Parquet schema, declared once
// here for the stage that writes it and every stage (and the summary) that reads it.
import type { EncoderName } from '../config/schema.ts';
import type { TableSchema } from './parquet.ts';

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
