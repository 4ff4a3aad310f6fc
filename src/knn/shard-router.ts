// Routes vectors to index shards by where they lie, so that a query need search only the few shards
// near it (index.probe_shards) instead of every shard: the search cost per query then depends on the
// shard size, not on the corpus size. Shards are the cells of a spherical k-means over a sample of
// the space (one centroid per shard). A vector's score for shard s is its inner product with the
// centroid minus the shard's bias; its home shard (where it is indexed) is its best score, and a
// query searches its `probes` best. The biases are fitted on the sample so that no shard holds more
// than about ROUTED_SHARD_CAPACITY times its share: k-means cells alone are as uneven as the data.
// A vector near a cell's border may also be indexed in its second best shard (index.shard_overlap):
// its neighbours across the border then find it from either side, which buys more recall than
// probing one more shard, for less work (SPANN's boundary replication, one replica at most so that
// a shard's size stays bounded by the config).
import { Rng } from '../util/rng.ts';

/** A shard may hold this much more than an equal share of the sample (the plan sizes shards by it). */
export const ROUTED_SHARD_CAPACITY = 1.15;
const KMEANS_ROUNDS = 15;

export class ShardRouter {
  constructor(
    readonly dim: number,
    /** [shards, dim], row s the unit centroid of shard s. */
    readonly centroids: Float32Array,
    readonly bias: Float32Array,
  ) {}

  get shards(): number {
    return this.bias.length;
  }

  /** The `probes` shards of best score, best first (ties: lower shard). */
  route(vector: Float32Array, probes: number): number[] {
    const scores = this.scores(vector);
    const order = Array.from(scores.keys()).sort((a, b) => scores[b] - scores[a] || a - b);
    return order.slice(0, Math.min(probes, this.shards));
  }

  /** The shard a vector is indexed in. */
  home(vector: Float32Array): number {
    return this.homes(vector, 0)[0];
  }

  /**
   * The shards a vector is indexed in: its home, and its second best when that scores within
   * `overlap` of the home (0: the home only).
   */
  homes(vector: Float32Array, overlap: number): number[] {
    const scores = this.scores(vector);
    let best = 0;
    for (let s = 1; s < scores.length; s++) if (scores[s] > scores[best]) best = s;
    if (!(overlap > 0)) return [best];
    let second = -1;
    for (let s = 0; s < scores.length; s++) if (s !== best && (second < 0 || scores[s] > scores[second])) second = s;
    return second >= 0 && scores[best] - scores[second] <= overlap ? [best, second] : [best];
  }

  private scores(vector: Float32Array): Float64Array {
    const { dim, centroids, bias } = this;
    const out = new Float64Array(bias.length);
    for (let s = 0; s < bias.length; s++) {
      let dot = 0;
      for (let d = 0; d < dim; d++) dot += vector[d] * centroids[s * dim + d];
      out[s] = dot - bias[s];
    }
    return out;
  }

  toJSON(): { dim: number; centroids: number[]; bias: number[] } {
    return { dim: this.dim, centroids: Array.from(this.centroids), bias: Array.from(this.bias) };
  }

  static fromJSON(j: { dim: number; centroids: number[]; bias: number[] }): ShardRouter {
    return new ShardRouter(j.dim, Float32Array.from(j.centroids), Float32Array.from(j.bias));
  }

  /** Spherical k-means over `sample` (unit vectors), seeded, then biases fitted so the sample's shards are even. */
  static train(sample: Float32Array[], dim: number, shards: number, seed: string): ShardRouter {
    const centroids = new Float32Array(shards * dim);
    if (shards === 1 || sample.length === 0) return new ShardRouter(dim, centroids, new Float32Array(shards));
    const rng = Rng.for(seed);
    // Start from distinct sample points (or repeats of them, on a sample smaller than the shards).
    const starts = rng.sample(Array.from(sample.keys()), Math.min(shards, sample.length));
    for (let s = 0; s < shards; s++) centroids.set(sample[starts[s % starts.length]], s * dim);
    const router = new ShardRouter(dim, centroids, new Float32Array(shards));
    for (let round = 0; round < KMEANS_ROUNDS; round++) {
      const sums = new Float64Array(shards * dim);
      const counts = new Int32Array(shards);
      for (const v of sample) {
        const s = router.home(v);
        counts[s]++;
        for (let d = 0; d < dim; d++) sums[s * dim + d] += v[d];
      }
      for (let s = 0; s < shards; s++) {
        // An empty cell restarts at a random sample point.
        if (counts[s] === 0) centroids.set(sample[rng.int(0, sample.length - 1)], s * dim);
        else normaliseInto(centroids.subarray(s * dim, (s + 1) * dim), sums.subarray(s * dim, (s + 1) * dim));
      }
    }
    router.fitBias(sample, Math.ceil((ROUTED_SHARD_CAPACITY * sample.length) / shards));
    return router;
  }

  /**
   * Raises the bias of the fullest shard over `capacity` just enough that its excess members (to 3%
   * under it), those with the least margin over their next best shard, move there; repeated until none is over (or a
   * bounded number of rounds: an uneven remainder only makes that shard larger, never wrong).
   */
  private fitBias(sample: Float32Array[], capacity: number): void {
    const S = this.shards;
    const dots = sample.map((v) => this.scores(v)); // inner products: the biases are all 0 here
    const homes = new Int32Array(sample.length);
    const counts = new Int32Array(S);
    for (let round = 0; round < 50 * S; round++) {
      counts.fill(0);
      dots.forEach((d, i) => {
        let best = 0;
        for (let s = 1; s < S; s++) if (d[s] - this.bias[s] > d[best] - this.bias[best]) best = s;
        homes[i] = best;
        counts[best]++;
      });
      let fullest = 0;
      for (let s = 1; s < S; s++) if (counts[s] > counts[fullest]) fullest = s;
      if (counts[fullest] <= capacity) return;
      const margins: number[] = [];
      dots.forEach((d, i) => {
        if (homes[i] !== fullest) return;
        let next = -Infinity;
        for (let s = 0; s < S; s++) if (s !== fullest) next = Math.max(next, d[s] - this.bias[s]);
        margins.push(d[fullest] - this.bias[fullest] - next);
      });
      margins.sort((a, b) => a - b);
      // A little below the capacity, or the members moved on tip another shard just over it, and back.
      const keep = Math.floor(0.97 * capacity);
      this.bias[fullest] += margins[counts[fullest] - keep - 1] + 1e-6;
    }
  }
}

function normaliseInto(out: Float32Array, sum: Float64Array): void {
  let norm = 0;
  for (let d = 0; d < sum.length; d++) norm += sum[d] * sum[d];
  norm = Math.sqrt(norm) || 1;
  for (let d = 0; d < sum.length; d++) out[d] = sum[d] / norm;
}
