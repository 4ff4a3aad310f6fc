// The order to search a batch of queries in: nearby queries one after another, so that a search
// finds the graph nodes the previous one visited still in the CPU caches. Catalog order has nothing
// to do with the embedding space, and a shard far larger than the caches then costs mostly memory
// stalls. Only the time depends on the order: each hnswlib search is independent of the others.
//
// A random-projection tree, written here because it is a few lines and no library sorts vectors
// for cache locality: a set is split at the median of its members' projections on the difference of
// two of its members, down to leaves of LEAF; the leaves come out in tree order.
import { Rng } from '../util/rng.ts';

const LEAF = 32;

/** `rows` (row numbers into `data`, `dim` floats each) reordered so that neighbours in space are near in the order. */
export function localityOrder(data: Float32Array, dim: number, rows: ArrayLike<number>, seed: number): Int32Array {
  const order = Int32Array.from(rows);
  const projection = new Float64Array(data.length / Math.max(dim, 1));
  const rng = new Rng(seed);
  const ranges: Array<[number, number]> = [[0, order.length]];
  while (ranges.length) {
    const [lo, hi] = ranges.pop()!;
    if (hi - lo <= LEAF) continue;
    const a = order[rng.int(lo, hi - 1)] * dim;
    const b = order[rng.int(lo, hi - 1)] * dim;
    for (let i = lo; i < hi; i++) {
      const v = order[i] * dim;
      let x = 0;
      for (let d = 0; d < dim; d++) x += data[v + d] * (data[a + d] - data[b + d]);
      projection[order[i]] = x;
    }
    order.subarray(lo, hi).sort((p, q) => projection[p] - projection[q] || p - q);
    const mid = (lo + hi) >> 1;
    ranges.push([mid, hi], [lo, mid]);
  }
  return order;
}
