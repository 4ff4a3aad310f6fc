// Where every artifact lives (docs/architecture.md, "Artifacts and their keys"). Work artifacts sit under their
// stage's provenance key, `<folder>/<key>/...` (src/provenance/stage-keys.ts), so a changed
// config writes beside the old artifacts and never reads them. A part number is the input shard's
// number, so a catalog part, its embeddings, its pairs, its annotations and its triples all share
// one number. The product under the output prefix keeps plain names for its readers; markers
// under the output prefix (_megapairs/) say which key wrote it. Stages keyed by part (catalog, embed) keep each
// part under its own part key: `catalog/<part key>/part-NNNNN.parquet`.
import type { EncoderName } from '../config/schema.ts';
import { partKeyName, type StageKeys } from './keys.ts';

const part = (n: number) => `part-${String(n).padStart(5, '0')}`;
const shard = (s: number) => `shard-${String(s).padStart(2, '0')}`;

/** Work folders that are not keyed by a stage: the ledger (keyed inside), run records, identity. */
export const LEDGER_FOLDER = 'failures';
/** A stage's ledger folder under one key (gc keeps or removes them whole). */
export const ledgerFolder = (stage: string, key: string) => `${LEDGER_FOLDER}/${stage}/${key}/`;
/** Every ledger's stage: the pipeline's and the steps outside it that keep one. */
export const LEDGER_STAGES_OUTSIDE = ['export_images', 'control'];
export const RUNS_FOLDER = 'runs';
/** The annotation request cache: content-addressed, kept by gc for any config to reuse. */
export const REQUESTS_FOLDER = 'requests';
/** Ledgers of steps outside the pipeline, kept under the key of the stage whose product they read. */
const LEDGER_KEYED_BY: Record<string, string> = { export_images: 'jsonl', control: 'jsonl' }; // control: barrier jobs a worker refused

/** One shard's rows of one part (stages/shard-rows.ts): their numbers in the part, and their vectors. */
const shardRows = (folder: string, encoder: EncoderName, s: number, n: number) => ({
  rows: `${folder}/${encoder}/${shard(s)}/${part(n)}.rows.npy`,
  vectors: `${folder}/${encoder}/${shard(s)}/${part(n)}.npy`,
});

export type Layout = ReturnType<typeof keyedLayout>;

/** `folders`: each stage's work folder, from the pipeline's registry (src/pipeline.ts). */
export function keyedLayout(keys: StageKeys, folders: Readonly<Record<string, string>>) {
  const at = (stage: string) => {
    const key = keys[stage];
    if (!key || !folders[stage]) throw new Error(`no provenance key or folder for stage "${stage}"`);
    return `${folders[stage]}/${key}`;
  };
  const atPart = (stage: string, n: number) => {
    const key = keys[partKeyName(stage, part(n))];
    if (!key || !folders[stage]) throw new Error(`no provenance key for ${part(n)} of stage "${stage}": the part is not in this run's corpus`);
    return `${folders[stage]}/${key}`;
  };
  /** A unit's ledger sits under its part's key where its stage is keyed by part ("part-00003.unit" is part-00003's). */
  const ledgerKey = (stage: string, unit?: string) => {
    const key = (unit && keys[partKeyName(stage, unit.replace(/\.unit$/, ''))]) || keys[stage] || keys[LEDGER_KEYED_BY[stage]];
    if (!key) throw new Error(`no provenance key for the ledger of "${stage}"`);
    return key;
  };
  /** The part keys of a stage keyed by part, or undefined for other stages. */
  const partKeys = (stage: string) => {
    const found = Object.keys(keys).filter((name) => name.startsWith(partKeyName(stage, '')));
    return found.length ? found.map((name) => keys[name]) : undefined;
  };
  return {
    keys,
    /** The folder holding every artifact of a stage under its current key. */
    stageFolder: (stage: string) => `${at(stage)}/`,
    catalogPart: (n: number) => `${atPart('catalog', n)}/${part(n)}.parquet`,
    catalogManifest: () => `${at('manifest')}/manifest.json`,
    embeddingPart: (encoder: EncoderName, n: number) => `${atPart('embed', n)}/${encoder}/${part(n)}.npy`,
    /** uint8 per catalog row: 1 when every encoder embedded the image. Written last: marks the chunk complete. */
    embeddingMask: (n: number) => `${atPart('embed', n)}/mask/${part(n)}.npy`,
    /** A space's shard router (centroids and biases, JSON), when index.probe_shards > 0. */
    shardRouter: (encoder: EncoderName) => `${at('partition')}/${encoder}.router.json`,
    /** A part's rows that a routed shard indexes (its home, or its border's second nearest): row numbers and vectors. */
    shardMembers: (encoder: EncoderName, s: number, n: number) => shardRows(at('assign'), encoder, s, n),
    /** Rows per shard of each space, written after every shard's rows of the part: marks its assign unit complete. */
    shardMembersDone: (n: number) => `${at('assign')}/${part(n)}.json`,
    /** A part's rows that are searched in a routed shard (it is among their probe_shards nearest). */
    shardQueries: (encoder: EncoderName, s: number, n: number) => shardRows(at('route'), encoder, s, n),
    /** As shardMembersDone, for the route unit. */
    shardQueriesDone: (n: number) => `${at('route')}/${part(n)}.json`,
    indexShard: (encoder: EncoderName, s: number) => `${at('index')}/${encoder}/${shard(s)}.hnsw`,
    indexShardMeta: (encoder: EncoderName, s: number) => `${at('index')}/${encoder}/${shard(s)}.json`,
    /** One search unit's partial top-K for one query part: neighbour ids (int32, -1: none) and distances (float32), [rows, k+1]. */
    searchIds: (encoder: EncoderName, s: number, n: number) => `${at('search')}/${encoder}/${shard(s)}/${part(n)}.ids.npy`,
    /** The part's near-duplicate pairs (similarity at or above the band) found in the shard, int32 [pairs, 2]. */
    searchNearDuplicates: (encoder: EncoderName, s: number, n: number) => `${at('search')}/${encoder}/${shard(s)}/${part(n)}.near.npy`,
    /** Written after the ids and near-duplicates: marks the unit's output for the part complete. */
    searchDistances: (encoder: EncoderName, s: number, n: number) => `${at('search')}/${encoder}/${shard(s)}/${part(n)}.dist.npy`,
    /** A space's measured recall (a seeded sample searched exactly and by the index). */
    recall: (encoder: EncoderName) => `${at('recall')}/${encoder}.json`,
    /** A part's pairs before the run-wide selection (target cap, symmetry, near-duplicate negatives). */
    candidatesPart: (n: number) => `${at('mine')}/${part(n)}.parquet`,
    /** A part's mining statistics and near-duplicate edges, for the selection and the summary. */
    candidatesStats: (n: number) => `${at('mine')}/${part(n)}.json`,
    pairsPart: (n: number) => `${at('select')}/${part(n)}.parquet`,
    /** The run-wide selection's statistics; written after every pairs part. */
    miningStats: () => `${at('select')}/_mining.json`,
    annotationsPart: (n: number) => `${at('annotate')}/${part(n)}.parquet`,
    /** Requests and token counts of one annotate unit, for summary.json's `annotation` section. */
    annotationStats: (n: number) => `${at('annotate')}/${part(n)}.stats.json`,
    /**
     * A model reply, by the hash of the request that got it. Content-addressed, under no stage's
     * key: a rerun, a re-mine or another config that sends the same request reads it.
     */
    cachedRequest: cachedRequestPath,
    /** The batch journal beside it: an uploaded batch file's record and its requests, whatever run uploaded it. */
    batchRecord: batchRecordPath,
    batchRequests: batchRequestsPath,
    /** Written after a part's triples reach the output: the emit key the output part is from. */
    emittedMarker: (n: number) => `_megapairs/triples/${part(n)}.key`,
    exportedMarker: () => `_megapairs/megapairs.jsonl.key`,
    /**
     * The folders holding a stage's ledger under the current keys: the stage key's (entries that
     * are no part's, e.g. refused jobs) and, where it is keyed by part, one per part key.
     */
    ledgerFolders: (stage: string) => [ledgerKey(stage), ...(partKeys(stage) ?? [])].map((key) => ledgerFolder(stage, key)),
    ledgerPart: (stage: string, unit: string) => `${LEDGER_FOLDER}/${stage}/${ledgerKey(stage, unit)}/${unit}.jsonl`,
    /** What a distributed unit computed (items, failed), beside its ledger: read back by a later attempt that finds the unit complete. */
    unitResult: (stage: string, unit: string) => `${LEDGER_FOLDER}/${stage}/${ledgerKey(stage, unit)}/${unit}.result.json`,
    ...outputLayout,
  };
}

/** A model reply in the annotation request cache, by its request's hash (the same under every key). */
export function cachedRequestPath(hash: string): string {
  return `${REQUESTS_FOLDER}/${hash.slice(0, 2)}/${hash}.json`;
}

/** Work paths under no stage's key: a run name's record and lease, and a storage's identity marker. */
export const unkeyedLayout = {
  /** The last run of a run name: its key and every stage's provenance (provenance/run-record.ts). */
  runRecord: (run: string) => `${RUNS_FOLDER}/${run}.json`,
  /** The local run holding a run name (runner/lease.ts). */
  runLease: (run: string) => `${RUNS_FOLDER}/${run}.lease.json`,
  /** A storage's random id, by which runs compare storages instead of locations (provenance/storage-identity.ts). */
  storageIdentity: () => '_megapairs/identity.json',
};

/**
 * The batch journal (src/annotate/batch/journal.ts), beside the replies it fills: one record per
 * uploaded batch input file, by the file's id, whatever run uploaded it. A record names the
 * file's requests in a second object, written first, so states are rewritten without them.
 */
export const BATCHES_FOLDER = `${REQUESTS_FOLDER}/batches/`;
/** An uploaded file's record: its batch, states with their times, request counts, when it was collected. */
export function batchRecordPath(fileId: string): string {
  return `${BATCHES_FOLDER}${fileId}.json`;
}
/** The custom_ids (request hashes) an uploaded file holds, in its line order, with their models. */
export function batchRequestsPath(fileId: string): string {
  return `${BATCHES_FOLDER}${fileId}.requests.json`;
}

/** The product under the output prefix: plain names, whichever key wrote them. */
export const outputLayout = {
  /** The folders of the per-part product and its markers: a part there that the run did not emit is another config's. */
  partFolders: () => ['triples/', '_megapairs/triples/'],
  triplesPart: (n: number) => `triples/${part(n)}.parquet`,
  triplesJsonlPart: (n: number) => `triples/${part(n)}.jsonl`,
  megapairsJsonl: () => 'megapairs.jsonl',
  summary: () => 'summary.json',
  /** The run report page, beside summary.json. */
  report: () => 'report.html',
};

export const partName = part;
