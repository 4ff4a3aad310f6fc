// Milliseconds per query for one shard's search of `rows` (row numbers into `data`), in the order
// given (catalog order) and in locality order (knn/locality-order.ts), alternated twice so that
// both see the same machine.
import type { LoadedShard } from '../src/knn/hnsw-shard.ts';
import { localityOrder } from '../src/knn/locality-order.ts';

export function timeSearchOrders(shard: LoadedShard, data: Float32Array, dim: number, rows: number[], k: number): { catalog: number; locality: number } {
  const orders = { catalog: Int32Array.from(rows), locality: localityOrder(data, dim, rows, 1) };
  const ms = { catalog: 0, locality: 0 };
  for (let rep = 0; rep < 2; rep++) {
    for (const name of ['catalog', 'locality'] as const) {
      const t = performance.now();
      for (const row of orders[name]) shard.knn(data.subarray(row * dim, (row + 1) * dim), k);
      ms[name] += (performance.now() - t) / rows.length / 2;
    }
  }
  return ms;
}
