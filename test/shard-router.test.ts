// The shard router: a seeded k-means whose cells are even, and routes that agree with the homes.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ShardRouter } from '../src/knn/shard-router.ts';
import { Rng } from '../src/util/rng.ts';

/** Unit vectors in `clusters` tight clusters of uneven size (a cell per cluster would be very uneven). */
function clustered(n: number, dim: number, clusters: number, seed: number): Float32Array[] {
  const rng = new Rng(seed);
  const centres = Array.from({ length: clusters }, () => Float32Array.from({ length: dim }, () => rng.normal()));
  return Array.from({ length: n }, () => {
    const c = centres[Math.floor(rng.next() ** 3 * clusters)]; // the first clusters far larger
    const v = c.map((x) => x + 0.3 * rng.normal());
    const norm = Math.hypot(...v);
    return v.map((x) => x / norm);
  });
}

test('a trained router is seeded, its cells hold at most 15% over an even share, and a vector is routed first to its home', () => {
  const sample = clustered(2000, 32, 12, 1);
  const shards = 8;
  const router = ShardRouter.train(sample, 32, shards, 'test');
  assert.deepEqual(JSON.stringify(ShardRouter.train(sample, 32, shards, 'test')), JSON.stringify(router), 'same sample and seed: same router');
  assert.notDeepEqual(JSON.stringify(ShardRouter.train(sample, 32, shards, 'other')), JSON.stringify(router));

  const counts = new Array(shards).fill(0);
  for (const v of sample) counts[router.home(v)]++;
  for (const c of counts) assert.ok(c <= Math.ceil((1.15 * sample.length) / shards), `cells ${counts}`);
  assert.ok(Math.min(...counts) > 0, `cells ${counts}`);

  const back = ShardRouter.fromJSON(JSON.parse(JSON.stringify(router)));
  for (const v of clustered(200, 32, 12, 2)) {
    const route = router.route(v, 3);
    assert.equal(route.length, 3);
    assert.equal(new Set(route).size, 3);
    assert.equal(route[0], router.home(v));
    assert.deepEqual(back.route(v, 3), route, 'a router read back routes alike');
    assert.deepEqual(router.route(v, 99), router.route(v, shards), 'at most every shard');
  }
});

test('shard_overlap: a vector near a border is also at home in its second nearest shard, never in a third', () => {
  const sample = clustered(2000, 32, 12, 1);
  const router = ShardRouter.train(sample, 32, 8, 'test');
  let replicated = 0;
  for (const v of clustered(500, 32, 12, 5)) {
    const [first, second] = router.route(v, 2);
    assert.deepEqual(router.homes(v, 0), [first], 'no overlap: the home only');
    assert.deepEqual(router.homes(v, 10), [first, second], 'any margin within a wide overlap: the two nearest');
    const homes = router.homes(v, 0.05);
    assert.equal(homes[0], first);
    if (homes.length === 2) replicated++, assert.equal(homes[1], second);
  }
  assert.ok(replicated > 0 && replicated < 500, `${replicated} of 500 within 0.05 of a border`);
});

test('one shard: every vector is at home in it, with nothing trained', () => {
  const router = ShardRouter.train(clustered(50, 8, 3, 3), 8, 1, 'test');
  assert.equal(router.shards, 1);
  assert.deepEqual(router.route(clustered(1, 8, 3, 4)[0], 2), [0]);
  assert.deepEqual(router.homes(clustered(1, 8, 3, 4)[0], 1), [0], 'no second shard to overlap into');
});
