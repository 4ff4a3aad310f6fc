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
  /** One search unit's partial top-K for one query part: neighbour ids (int32, -1: none) and distances (float32), [rows, k+1]. */
  searchIds: (encoder: EncoderName, s: number, n: number) => `search/${encoder}/shard-${String(s).padStart(2, '0')}/${part(n)}.ids.npy`,
  /** The part's near-duplicate pairs (similarity at or above the band) found in the shard, int32 [pairs, 2]. */
  searchNearDuplicates: (encoder: EncoderName, s: number, n: number) => `search/${encoder}/shard-${String(s).padStart(2, '0')}/${part(n)}.near.npy`,
  /** Written after the ids and near-duplicates: marks the unit's output for the part complete. */
  searchDistances: (encoder: EncoderName, s: number, n: number) => `search/${encoder}/shard-${String(s).padStart(2, '0')}/${part(n)}.dist.npy`,
  /** A space's measured recall (a seeded sample searched exactly and by the index). */
  recall: (encoder: EncoderName) => `recall/${encoder}.json`,
  /** A part's pairs before the run-wide selection (target cap, symmetry, near-duplicate negatives). */
  candidatesPart: (n: number) => `candidates/${part(n)}.parquet`,
  /** A part's mining statistics and near-duplicate edges, for the selection and the summary. */
  candidatesStats: (n: number) => `candidates/${part(n)}.json`,
  pairsPart: (n: number) => `pairs/${part(n)}.parquet`,
  /** The run-wide selection's statistics; written after every pairs part. */
  miningStats: () => 'pairs/_mining.json',
  annotationsPart: (n: number) => `annotations/${part(n)}.parquet`,
  ledgerPart: (stage: string, unit: string) => `failures/${stage}/${unit}.jsonl`,
  // Under the output prefix:
  triplesPart: (n: number) => `triples/${part(n)}.parquet`,
  triplesJsonlPart: (n: number) => `triples/${part(n)}.jsonl`,
  megapairsJsonl: () => 'megapairs.jsonl',
  summary: () => 'summary.json',
};

export const partName = part;
