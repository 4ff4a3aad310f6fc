// A mining worker keeps index shards within index.memory_budget_mb: the cache drops the least
// recently used shards, and mining one shard at a time under a tiny budget finds the same pairs.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import type { LoadedShard } from '../src/knn/hnsw-shard.ts';
import { LruCache } from '../src/util/lru.ts';
import { createContext } from '../src/runner/context.ts';
import { runLocal } from '../src/runner/local.ts';
import { ProgressReporter } from '../src/runner/progress.ts';
import { demoConfig, sampleSlice, tempDir } from './helpers.ts';

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

test('mining under a budget of about one shard gives the same triples as with every shard loaded', { timeout: 120_000 }, async () => {
  const input = await sampleSlice();
  const quiet = new ProgressReporter(process.stderr, true);
  const jsonl = async (budget: number) => {
    const root = tempDir('budget');
    const ctx = createContext(demoConfig(input, root, { index: { shard_size: 40, memory_budget_mb: budget } }));
    await runLocal(ctx, { progress: quiet });
    const cache = (await ctx.memo.get('hnsw-shards')) as LruCache<LoadedShard>;
    return { text: readFileSync(path.join(root, 'output', 'megapairs.jsonl'), 'utf8'), held: cache.used };
  };
  const all = await jsonl(4096);
  const tight = await jsonl(0.06); // a 40-point shard of 256-d vectors is about 50 KB
  assert.equal(tight.text, all.text);
  assert.ok(tight.held <= 0.06 * 1024 * 1024, `held ${tight.held} bytes`);
  assert.ok(all.held > tight.held);
});
