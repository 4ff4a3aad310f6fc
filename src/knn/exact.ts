// Exact nearest neighbours by brute force, for measuring what the HNSW index misses: each query
// keeps its k best of every vector streamed past it (inner product of L2-normalised vectors).
import type { Neighbour } from './hnsw-shard.ts';

export class ExactTopK {
  /** Per query, its best so far: highest similarity first, ties by lower id (as mergeTopK). */
  private readonly best: Neighbour[][];

  constructor(
    private readonly queries: Float32Array[],
    private readonly k: number,
  ) {
    this.best = queries.map(() => []);
  }

  /** Compares every query with the vector of image `id`. */
  add(id: number, vector: Float32Array): void {
    for (let q = 0; q < this.queries.length; q++) {
      const dot = ExactTopK.similarity(this.queries[q], vector);
      const list = this.best[q];
      if (list.length === this.k && !better(dot, id, list[list.length - 1])) continue;
      let at = list.length;
      while (at > 0 && better(dot, id, list[at - 1])) at--;
      list.splice(at, 0, { id, similarity: dot });
      if (list.length > this.k) list.pop();
    }
  }

  /** The similarity exactly as the search computes it (so equal vectors give equal values). */
  static similarity(a: Float32Array, b: Float32Array): number {
    let dot = 0;
    for (let i = 0; i < b.length; i++) dot += a[i] * b[i];
    return dot;
  }

  result(q: number): Neighbour[] {
    return this.best[q];
  }
}

const better = (similarity: number, id: number, than: Neighbour) => similarity > than.similarity || (similarity === than.similarity && id < than.id);
