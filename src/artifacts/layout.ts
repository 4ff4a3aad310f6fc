// Where every artifact lives under the work and output prefixes (DESIGN.md, "Data flow"). A part
// number is the input shard's number, so a catalog part, its embeddings, its pairs, its
// annotations and its triples all share one number.
import type { EncoderName } from '../config/schema.ts';

const part = (n: number) => `part-${String(n).padStart(5, '0')}`;

export const layout = {
  catalogPart: (n: number) => `catalog/${part(n)}.parquet`,
  catalogManifest: () => 'catalog/_manifest.json',
  embeddingPart: (encoder: EncoderName, n: number) => `embeddings/${encoder}/${part(n)}.npy`,
  /** uint8 per catalog row: 1 when every encoder embedded the image. Written last: marks the chunk complete. */
  embeddingMask: (n: number) => `embeddings/mask/${part(n)}.npy`,
  indexShard: (encoder: EncoderName, s: number) => `index/${encoder}/shard-${String(s).padStart(2, '0')}.hnsw`,
  indexShardMeta: (encoder: EncoderName, s: number) => `index/${encoder}/shard-${String(s).padStart(2, '0')}.json`,
  pairsPart: (n: number) => `pairs/${part(n)}.parquet`,
  annotationsPart: (n: number) => `annotations/${part(n)}.parquet`,
  /** Requests and token counts of one annotate unit, for summary.json's `annotation` section. */
  annotationStats: (n: number) => `annotations/${part(n)}.stats.json`,
  /**
   * A model reply, by the hash of the request that got it. Content-addressed, under no stage's
   * key: a rerun, a re-mine or another config that sends the same request reads it.
   */
  cachedRequest: (hash: string) => `requests/${hash.slice(0, 2)}/${hash}.json`,
  ledgerPart: (stage: string, unit: string) => `failures/${stage}/${unit}.jsonl`,
  // Under the output prefix:
  triplesPart: (n: number) => `triples/${part(n)}.parquet`,
  triplesJsonlPart: (n: number) => `triples/${part(n)}.jsonl`,
  megapairsJsonl: () => 'megapairs.jsonl',
  summary: () => 'summary.json',
};

export const partName = part;
