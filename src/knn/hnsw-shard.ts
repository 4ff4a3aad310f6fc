// HNSW index shards over L2-normalised vectors (inner product = cosine). Labels are global image
// ids, so results from different shards merge directly. A query is searched in every shard
// (scatter) and the partial lists are merged into one top-K (gather).
import { stat } from 'node:fs/promises';
import hnswlib from 'hnswlib-node';
import { storeViaLocalFile } from '../storage/staged-file.ts';
import type { Storage } from '../storage/storage.ts';

const { HierarchicalNSW } = hnswlib;
type Index = InstanceType<typeof HierarchicalNSW>;

export interface ShardParams {
  m: number;
  efConstruction: number;
  seed: number;
}

export interface Neighbour {
  id: number;
  similarity: number;
}

/** Builds a shard from (id, vector) pairs and stores it under `key`. */
export async function buildShard(
  storage: Storage,
  key: string,
  dim: number,
  points: Iterable<{ id: number; vector: Float32Array }>,
  count: number,
  params: ShardParams,
): Promise<void> {
  const index = new HierarchicalNSW('ip', dim);
  index.initIndex(Math.max(1, count), params.m, params.efConstruction, params.seed);
  for (const p of points) index.addPoint(Array.from(p.vector), p.id);
  await storeViaLocalFile(storage, key, async (file) => index.writeIndexSync(file));
}

export class LoadedShard {
  /** The query as hnswlib-node takes it (a plain array), reused: Array.from of 512 floats costs more than a small shard's search. */
  private readonly query: number[] = [];

  constructor(
    private readonly index: Index,
    private size: number,
  ) {}

  get count(): number {
    return this.size;
  }

  /** The k nearest as hnswlib gives them: labels and float32 distances (1 - inner product). */
  knn(vector: Float32Array | number[], k: number): { neighbors: number[]; distances: number[] } {
    const n = Math.min(k, this.size);
    if (n <= 0) return { neighbors: [], distances: [] };
    this.query.length = vector.length;
    for (let i = 0; i < vector.length; i++) this.query[i] = vector[i];
    return this.index.searchKnn(this.query, n);
  }

  search(vector: Float32Array | number[], k: number): Neighbour[] {
    const { neighbors, distances } = this.knn(vector, k);
    return neighbors.map((id, i) => ({ id, similarity: 1 - distances[i] }));
  }

  /**
   * Frees the native index now. hnswlib's memory is invisible to the garbage collector, so an
   * index merely dropped stays allocated until a collection that may not come; initIndex on one
   * element deletes the loaded graph (hnswlib-node's addon deletes the old index first).
   */
  release(): void {
    if (this.size > 0) this.index.initIndex(1);
    this.size = 0;
  }
}

/** Loads a shard; `onRead` is told the bytes of the file read (for the metrics). */
export async function loadShard(
  storage: Storage,
  key: string,
  dim: number,
  count: number,
  efSearch: number,
  onRead?: (bytes: number) => void,
): Promise<LoadedShard> {
  const index = new HierarchicalNSW('ip', dim);
  if (count > 0) {
    const file = await storage.localPath(key);
    index.readIndexSync(file);
    index.setEf(Math.max(efSearch, 1));
    onRead?.((await stat(file)).size);
  }
  return new LoadedShard(index, count);
}

/**
 * Merges per-shard lists into the global top k: highest similarity first, ties by lower id, each id
 * once (an image near a routed shard's border is indexed in two shards and found in both).
 */
export function mergeTopK(lists: Neighbour[][], k: number): Neighbour[] {
  const seen = new Set<number>();
  return lists
    .flat()
    .sort((a, b) => b.similarity - a.similarity || a.id - b.id)
    .filter((nb) => !seen.has(nb.id) && seen.add(nb.id))
    .slice(0, k);
}

/**
 * Bytes hnswlib holds for `count` points of `dim` floats with M links per node (level 0 has 2M):
 * what a loaded shard costs, checked against index.memory_budget_mb when search is planned.
 */
export function shardBytes(count: number, dim: number, m: number): number {
  const level0 = dim * 4 + (2 * m + 1) * 4 + 8; // vector, links and their count, label
  return count * (level0 + (4 * (m + 1)) / Math.log(Math.max(m, 2)) + 64); // upper levels, locks and label map
}
