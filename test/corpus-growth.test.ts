// A corpus that grows: catalog and embeddings are keyed per part by their own shard, so a run on
// N shards and then on N + 2 catalogs and embeds only the two new shards, asks the model only about
// pairs it had not annotated, and gives the triples of a fresh run on all N + 2. A replaced shard
// recomputes its own parts only; a removed one drops its parts.
import assert from 'node:assert/strict';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { readParquet } from '../src/artifacts/parquet.ts';
import { pairsSchema, type PairRow } from '../src/artifacts/tables.ts';
import { dryRunPlan } from '../src/provenance/dry-run.ts';
import { createContext } from '../src/runner/context.ts';
import { runLocal } from '../src/runner/local.ts';
import type { StageReport } from '../src/core/stage-report.ts';
import { ProgressReporter } from '../src/runner/progress.ts';
import { summarize } from '../src/report/summary.ts';
import type { StageContext } from '../src/core/stage.ts';
import { FakeServer, good } from './chat-server.ts';
import { demoConfig, membersOf, type SliceSample, sliceSamples, tarOf, tempDir } from './helpers.ts';
import { shared } from '../src/stages/shared-resources.ts';

const server = new FakeServer();
let baseUrl: string;
let samples: SliceSample[];
before(async () => {
  baseUrl = await server.start();
  samples = await sliceSamples(['00000.tar', '00001.tar', '00002.tar']);
});
after(() => server.stop());

const SHARD = 30; // five shards of 30 images from the 150 of the slice
const writeShards = async (dir: string, numbers: number[]) => {
  await mkdir(dir, { recursive: true });
  for (const n of numbers) await writeFile(path.join(dir, `0000${n}.tar`), (await tarOf(membersOf(samples.slice(n * SHARD, (n + 1) * SHARD)))).bytes);
};

function config(input: string, root: string) {
  process.env.MEGAPAIRS_GROWTH_TEST_KEY = 'sk-growth-test';
  return demoConfig(input, root, {
    annotate: { annotator: 'openai', openai: { base_url: baseUrl, api_key_env: 'MEGAPAIRS_GROWTH_TEST_KEY', mllm: 'internvl2-26b', llm: 'llama-3-8b' } },
  });
}

async function run(ctx: StageContext): Promise<{ reports: StageReport[]; requests: number }> {
  server.plan([], good);
  const reports = await runLocal(ctx, { progress: new ProgressReporter(process.stderr, true) });
  return { reports, requests: server.requests.length };
}

async function pairKeys(ctx: StageContext): Promise<Set<string>> {
  const out = new Set<string>();
  for (const p of (await shared(ctx).manifest()).parts)
    for (const r of await readParquet<PairRow>(ctx.work, ctx.layout.pairsPart(p.number), pairsSchema)) out.add(`${r.q_id}>${r.t_id}`);
  return out;
}

const stage = (reports: StageReport[], name: string) => reports.find((r) => r.stage === name)!;

test('adding two shards catalogs, embeds and annotates only what is new, and gives the triples of a fresh run', async () => {
  const root = tempDir('growth');
  const input = path.join(root, 'corpus');
  await writeShards(input, [0, 1, 2]);
  const first = createContext(config(input, root));
  await run(first);
  const firstPairs = await pairKeys(first);

  await writeShards(input, [3, 4]);
  const grown = createContext(config(input, root));
  const plan = await dryRunPlan(grown);
  for (const name of ['catalog', 'embed']) {
    const s = plan.stages.find((p) => p.stage === name)!;
    assert.deepEqual([s.compute, s.units], [2, 5], `${name}: ${JSON.stringify(s)}`);
    assert.match(s.reason, /2 parts added \(part-00003, part-00004\)/, name);
  }

  const { reports, requests } = await run(grown);
  for (const name of ['catalog', 'embed']) {
    const r = stage(reports, name);
    assert.deepEqual([r.units, r.skipped, r.status], [5, 3, 'partly reused'], `${name}: ${JSON.stringify(r)}`);
  }
  assert.equal(stage(reports, 'embed').items, 2 * SHARD, 'only the new shards are embedded');
  // New images pair with old ones both ways; old pairs are served from the request cache.
  const grownPairs = await pairKeys(grown);
  const newPairs = [...grownPairs].filter((k) => !firstPairs.has(k));
  const oldKept = [...grownPairs].filter((k) => firstPairs.has(k));
  assert.ok(
    newPairs.some((k) => k.split('>').some((id) => Number(id) < 3 * SHARD)),
    'a new pair has an old image',
  );
  assert.ok(oldKept.length > 0, 'some pairs survive the growth');
  assert.equal(requests, 2 * newPairs.length, 'a description and an instruction request per new pair, none for the pairs annotated before');
  const summary = await summarize(grown, reports);
  const endpoints = Object.values(summary.annotation!.endpoints);
  assert.equal(
    endpoints.reduce((a, e) => a + e.requests, 0),
    requests,
    'the summary counts the requests made',
  );
  assert.equal(
    endpoints.reduce((a, e) => a + e.cached, 0),
    2 * oldKept.length,
    'and those served from the cache',
  );

  // A fresh run on all five shards: the same triples.
  const fresh = createContext(config(input, path.join(root, 'fresh')));
  await run(fresh);
  assert.equal(
    await readFile(path.join(root, 'fresh', 'output', 'megapairs.jsonl'), 'utf8'),
    await readFile(path.join(root, 'output', 'megapairs.jsonl'), 'utf8'),
  );
  assert.deepEqual(await pairKeys(fresh), grownPairs);
});

test('a replaced shard recomputes its own parts only; a removed one drops its parts', async () => {
  const root = tempDir('growth-change');
  const input = path.join(root, 'corpus');
  await writeShards(input, [0, 1, 2]);
  await run(createContext(config(input, root)));

  // Shard 1 now holds other images (the slice's fourth block), and shard 2 is gone.
  await writeFile(path.join(input, '00001.tar'), (await tarOf(membersOf(samples.slice(3 * SHARD, 4 * SHARD)))).bytes);
  await rm(path.join(input, '00002.tar'));
  const changed = createContext(config(input, root));
  const plan = await dryRunPlan(changed);
  const catalog = plan.stages.find((p) => p.stage === 'catalog')!;
  assert.deepEqual([catalog.compute, catalog.units], [1, 2]);
  assert.match(catalog.reason, /1 part removed \(part-00002\)/);
  assert.match(catalog.reason, /part-00001 tar\.size|part-00001 tar\.version|part-00001 (size|version)/);
  const { reports } = await run(changed);
  assert.deepEqual([stage(reports, 'embed').units, stage(reports, 'embed').skipped], [2, 1]);
  assert.equal((await shared(changed).manifest()).total, 2 * SHARD);
});
