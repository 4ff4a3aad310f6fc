import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { ExactTopK } from '../src/knn/exact.ts';
import { buildShard, loadShard, mergeTopK } from '../src/knn/hnsw-shard.ts';
import { localityOrder } from '../src/knn/locality-order.ts';
import { LocalStorage } from '../src/storage/local.ts';
import { Rng } from '../src/util/rng.ts';

function randomUnitVectors(n: number, dim: number, seed: number): Float32Array[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, () => {
    const v = Float32Array.from({ length: dim }, () => rng.normal());
    const norm = Math.hypot(...v);
    return v.map((x) => x / norm);
  });
}

test('a query searched in every shard and merged equals the unsharded search', async () => {
  const storage = new LocalStorage(mkdtempSync(path.join(tmpdir(), 'knn-')));
  const dim = 16;
  const vectors = randomUnitVectors(600, dim, 1);
  const params = { m: 16, efConstruction: 200, seed: 42 };
  const all = vectors.map((vector, id) => ({ id, vector }));
  await buildShard(storage, 'one.hnsw', dim, all, all.length, params);
  const shardSize = 150;
  for (let s = 0; s < 4; s++) await buildShard(storage, `s${s}.hnsw`, dim, all.slice(s * shardSize, (s + 1) * shardSize), shardSize, params);
  const one = await loadShard(storage, 'one.hnsw', dim, all.length, 400);
  const shards = await Promise.all([0, 1, 2, 3].map((s) => loadShard(storage, `s${s}.hnsw`, dim, shardSize, 400)));

  const k = 10;
  for (const q of randomUnitVectors(25, dim, 2)) {
    // Exact answer by brute force; with ef well above k both searches find it on 600 points.
    const exact = all
      .map(({ id, vector }) => ({ id, similarity: vector.reduce((s, x, i) => s + x * q[i], 0) }))
      .sort((a, b) => b.similarity - a.similarity || a.id - b.id)
      .slice(0, k);
    const unsharded = one.search(q, k);
    const sharded = mergeTopK(
      shards.map((s) => s.search(q, k)),
      k,
    );
    assert.deepEqual(
      sharded.map((n) => n.id),
      unsharded.map((n) => n.id),
    );
    assert.deepEqual(
      sharded.map((n) => n.id),
      exact.map((n) => n.id),
    );
    sharded.forEach((n, i) => assert.ok(Math.abs(n.similarity - exact[i].similarity) < 1e-5));
  }
});

test('merge keeps the k best, ties broken by id', () => {
  const merged = mergeTopK(
    [
      [
        { id: 5, similarity: 0.9 },
        { id: 1, similarity: 0.5 },
      ],
      [
        { id: 2, similarity: 0.9 },
        { id: 3, similarity: 0.7 },
      ],
    ],
    3,
  );
  assert.deepEqual(
    merged.map((n) => n.id),
    [2, 5, 3],
  );
});

test('exact top-k over streamed vectors equals a full sort; a released shard holds nothing and loads again', async () => {
  const dim = 8;
  const vectors = randomUnitVectors(300, dim, 3);
  const queries = randomUnitVectors(5, dim, 4);
  const exact = new ExactTopK(queries, 7);
  vectors.forEach((v, id) => exact.add(id, v));
  queries.forEach((q, i) => {
    const sorted = vectors
      .map((v, id) => ({ id, similarity: v.reduce((s, x, j) => s + x * q[j], 0) }))
      .sort((a, b) => b.similarity - a.similarity || a.id - b.id)
      .slice(0, 7);
    assert.deepEqual(
      exact.result(i).map((n) => n.id),
      sorted.map((n) => n.id),
    );
  });

  const storage = new LocalStorage(mkdtempSync(path.join(tmpdir(), 'knn-')));
  await buildShard(
    storage,
    's.hnsw',
    dim,
    vectors.map((vector, id) => ({ id, vector })),
    vectors.length,
    { m: 8, efConstruction: 50, seed: 1 },
  );
  const shard = await loadShard(storage, 's.hnsw', dim, vectors.length, 50);
  const before = shard.search(queries[0], 5);
  shard.release();
  assert.equal(shard.count, 0);
  assert.deepEqual(shard.search(queries[0], 5), []);
  assert.deepEqual((await loadShard(storage, 's.hnsw', dim, vectors.length, 50)).search(queries[0], 5), before);
});

test('locality order: a permutation of the rows given, with members of one cluster next to each other', () => {
  // 30 clusters of 40 points in 64-d, stored in shuffled order; rows 1 and 7 are left out.
  const dim = 64;
  const rng = new Rng(5);
  const centres = randomUnitVectors(30, dim, 6);
  const points = Array.from({ length: 1200 }, (_, i) => ({ cluster: i % 30, r: rng.next() })).sort((a, b) => a.r - b.r);
  const data = new Float32Array(points.length * dim);
  points.forEach((p, row) => centres[p.cluster].forEach((x, d) => (data[row * dim + d] = x + 0.03 * rng.normal())));
  const rows = points.map((_, row) => row).filter((row) => row !== 1 && row !== 7);

  const order = localityOrder(data, dim, rows, 9);
  assert.deepEqual(
    [...order].sort((a, b) => a - b),
    rows,
  );
  const sameCluster = (o: ArrayLike<number>) =>
    Array.from({ length: o.length - 1 }, (_, i) => points[o[i]].cluster === points[o[i + 1]].cluster).filter(Boolean).length / (o.length - 1);
  assert.ok(sameCluster(rows) < 0.1, `catalog order: ${sameCluster(rows)}`);
  assert.ok(sameCluster(order) > 0.7, `locality order: ${sameCluster(order)} of neighbours in one cluster`);
  assert.deepEqual(localityOrder(data, dim, rows, 9), order, 'the same seed gives the same order');
});
