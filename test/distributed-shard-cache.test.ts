// The bounded cache of loaded artifacts: the least recently used go first, within a cost budget.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { LoadedShard } from '../src/knn/hnsw-shard.ts';
import { LruCache } from '../src/util/lru.ts';

test('the shard cache keeps the most recently used shards within its budget', async () => {
  const loads: string[] = [];
  const cache = new LruCache<LoadedShard>(100);
  const get = (key: string, bytes: number) => cache.get(key, async () => (loads.push(key), { count: 0 } as unknown as LoadedShard), bytes);
  await get('a', 40);
  await get('b', 40);
  await get('a', 40); // a is now the most recent
  await get('c', 40); // over budget: b goes
  assert.deepEqual([cache.has('a'), cache.has('b'), cache.has('c')], [true, false, true]);
  assert.equal(cache.used, 80);
  await get('huge', 500); // larger than the budget: loaded, and alone
  assert.deepEqual([cache.has('a'), cache.has('c'), cache.has('huge')], [false, false, true]);
  assert.deepEqual(loads, ['a', 'b', 'c', 'huge']);
});

test('the shard cache forgets a failed load: it holds no budget, and the next get loads it again', async () => {
  const cache = new LruCache<LoadedShard>(100);
  let tries = 0;
  const failing = () => cache.get('bad', async () => (tries++, Promise.reject(new Error('unreadable shard'))), 10);
  await assert.rejects(failing(), /unreadable shard/);
  assert.deepEqual([cache.has('bad'), cache.used], [false, 0]);
  await assert.rejects(failing(), /unreadable shard/);
  assert.equal(tries, 2);
});
