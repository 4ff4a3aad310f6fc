// A corpus that grows, under the distributed runner: run on three shards, add two, run again. The
// second run catalogs and embeds only the two new shards (catalog and embeddings are keyed per
// part) and its triples are a fresh local run's on all five.
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { createContext } from '../src/runner/context.ts';
import { runLocal } from '../src/runner/local.ts';
import { ProgressReporter } from '../src/runner/progress.ts';
import { cli, newRun, stop, workers } from './distributed-harness.ts';
import { demoConfig, membersOf, sliceSamples, tarOf, tempDir } from './helpers.ts';

process.env.MEGAPAIRS_CACHE = tempDir('dist-growth-cache'); // built-in models made once for every process here

test('distributed: adding two shards catalogs and embeds only them, and gives the triples of a fresh run', { timeout: 300_000 }, async () => {
  const samples = await sliceSamples(['00000.tar', '00001.tar', '00002.tar']);
  const input = path.join(tempDir('dist-growth-corpus'), 'corpus');
  mkdirSync(input, { recursive: true });
  const writeShards = async (numbers: number[]) => {
    for (const n of numbers) writeFileSync(path.join(input, `0000${n}.tar`), (await tarOf(membersOf(samples.slice(n * 30, (n + 1) * 30)))).bytes);
  };
  await writeShards([0, 1, 2]);
  const run = newRun(input, 'growth');
  let ws = await workers(run.file, 1);
  assert.equal((await cli(['run', '--config', run.file]).exited).code, 0);
  await stop(ws);

  await writeShards([3, 4]);
  // The run first: a worker started now would find the first run (another corpus) and refuse it.
  const grown = cli(['run', '--config', run.file]);
  while (!grown.err().includes('following it') && grown.child.exitCode === null) await sleep(100);
  ws = await workers(run.file, 1);
  assert.equal((await grown.exited).code, 0, grown.err());
  await stop(ws);
  const summary = JSON.parse(readFileSync(path.join(run.root, 'output', 'summary.json'), 'utf8'));
  for (const s of ['catalog', 'embed']) {
    assert.equal(summary.stages[s].status, 'partly reused', s);
    assert.match(summary.stages[s].reason, /2 parts added \(part-00003, part-00004\)/, s);
  }
  assert.equal(summary.stages.embed.items, 60, 'only the new shards are embedded');
  assert.equal(summary.images.catalogued, 150);

  const fresh = tempDir('dist-growth-fresh');
  await runLocal(createContext(demoConfig(input, fresh)), { progress: new ProgressReporter(process.stderr, true) });
  assert.equal(run.jsonl(), readFileSync(path.join(fresh, 'output', 'megapairs.jsonl'), 'utf8'));
});
