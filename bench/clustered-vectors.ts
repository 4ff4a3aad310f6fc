// Synthetic CLIP-like vectors for the mining benches: clustered and L2-normalised, nearest-neighbour
// similarities mostly 0.8-0.95. Stored shuffled, as a real catalog is (its order has nothing to do
// with the embedding space), or cluster by cluster.
import { Rng } from '../src/util/rng.ts';

/** Clusters of 2-80 points around random centres; the per-cluster spread sets the neighbours' similarity (about 1 / (1 + s)). */
export function clusteredVectors(n: number, dim: number, seed: number, order: 'shuffled' | 'clustered'): Float32Array {
  const rng = new Rng(seed);
  const out = new Float32Array(n * dim);
  const centre = new Float32Array(dim);
  let i = 0;
  while (i < n) {
    for (let d = 0; d < dim; d++) centre[d] = rng.normal() / Math.sqrt(dim);
    const size = Math.min(n - i, rng.int(2, 80));
    const sigma = Math.sqrt(rng.next() * 0.2 + 0.06) / Math.sqrt(dim); // neighbours' similarity ~0.79-0.94
    for (let j = 0; j < size; j++, i++) {
      const v = out.subarray(i * dim, (i + 1) * dim);
      let norm = 0;
      for (let d = 0; d < dim; d++) norm += (v[d] = centre[d] + sigma * rng.normal()) ** 2;
      for (let d = 0; d < dim; d++) v[d] /= Math.sqrt(norm);
    }
  }
  if (order === 'clustered') return out;
  const shuffled = new Float32Array(n * dim);
  const ids = Array.from({ length: n }, (_, id) => id);
  // Fisher-Yates by hand: Rng.sample splices, which is quadratic at 200k.
  for (let j = n - 1; j > 0; j--) {
    const k = rng.int(0, j);
    [ids[j], ids[k]] = [ids[k], ids[j]];
  }
  ids.forEach((from, to) => shuffled.set(out.subarray(from * dim, (from + 1) * dim), to * dim));
  return shuffled;
}
