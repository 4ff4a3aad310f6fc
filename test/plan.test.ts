// `megapairs plan`: measured on the demo slice by really running its encoders, checked against
// what a run of the same config then writes; answered for --images 20000000; every figure but the
// index's shard count scales linearly, and memory per shard stays bounded by index.shard_size.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { before, test } from 'node:test';
import { decodeNpy } from '../src/artifacts/npy.ts';
import { ENCODER_NAMES } from '../src/config/schema.ts';
import { loadConfig, parseConfig } from '../src/config/load.ts';
import { shardBytes } from '../src/knn/hnsw-shard.ts';
import { estimateTokens, measure, type Measured } from '../src/plan/measure.ts';
import { formatPlan } from '../src/plan/format.ts';
import { planRun, type PlanInputs } from '../src/plan/plan.ts';
import { createContext } from '../src/runner/context.ts';
import { runLocal } from '../src/runner/local.ts';
import { ProgressReporter } from '../src/runner/progress.ts';
import { summarize } from '../src/report/summary.ts';
import { demoConfigObject, repoRoot, sampleSlice, tempDir, writeConfigFile } from './helpers.ts';

let root: string;
let configFile: string;
let measured: Measured;

before(async () => {
  root = tempDir('plan');
  configFile = writeConfigFile(root, demoConfigObject(await sampleSlice(), root));
  measured = await measure(createContext(loadConfig(configFile)), 48, {});
});

function megapairsPlan(...args: string[]): { plan: ReturnType<typeof planRun>; measured: Measured } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'src', 'cli', 'main.ts'), 'plan', '--json', ...args], {
    cwd: repoRoot,
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
}

const inputs = (images: number, pairsPerImage = 3): PlanInputs => ({
  images,
  imagesSource: 'given',
  pairsPerImage: { value: pairsPerImage, source: 'given' },
  tokens: { describe: { prompt: 1200, completion: 110 }, instruct: { prompt: 900, completion: 80 }, source: 'given' },
});

test('measured on the slice: the corpus listing, real encoder rates and the vector sizes a run then writes', async () => {
  assert.deepEqual([measured.corpus.images, measured.corpus.shards], [150, 3]);
  assert.match(measured.corpus.how, /stats of all 3 shards/);
  assert.equal(measured.sample.images, 48);
  for (const e of ENCODER_NAMES) {
    assert.equal(measured.encoders[e].source, 'measured');
    assert.ok(measured.encoders[e].perSecond > 0 && Number.isFinite(measured.encoders[e].perSecond), `${e} rate`);
  }
  // Run the config, and hold the plan to what the run wrote.
  const ctx = createContext(loadConfig(configFile));
  await runLocal(ctx, { progress: new ProgressReporter(process.stderr, true) });
  const summary = await summarize(ctx, []);
  await ctx.output.write(ctx.layout.summary(), JSON.stringify(summary)); // as `megapairs run` leaves it
  const pairs = Object.values(summary.pairs).reduce((a, b) => a + b, 0);
  const plan = planRun(ctx.config, measured, inputs(150, pairs / 150));
  const size = (key: string) => statSync(path.join(root, 'work', key)).size;
  for (const e of ENCODER_NAMES) {
    const npy = decodeNpy(readFileSync(path.join(root, 'work', ctx.layout.embeddingPart(e, 0))));
    assert.equal(plan.embedding.find((x) => x.encoder === e)!.dim, npy.shape[1], `${e} vector size`);
    const actual = [0, 1, 2].reduce((s, n) => s + size(ctx.layout.embeddingPart(e, n)), 0);
    const planned = plan.artifacts.find((a) => a.name === `embeddings/${e}`)!.bytes;
    assert.ok(Math.abs(planned - actual) / actual < 0.01, `${e}: planned ${planned} bytes, wrote ${actual}`);
  }
  assert.equal(plan.annotation.pairs, pairs);
  const within = (name: string, actual: number, factor: number) => {
    const planned = plan.artifacts.find((a) => a.name === name)!.bytes;
    assert.ok(planned < actual * factor && planned > actual / factor, `${name}: planned ${planned} bytes, wrote ${actual}`);
  };
  within(
    'catalog',
    [0, 1, 2].reduce((s, n) => s + size(ctx.layout.catalogPart(n)), 0),
    2,
  );
  within(
    'pairs',
    [0, 1, 2].reduce((s, n) => s + size(ctx.layout.pairsPart(n)), 0),
    2,
  );
  within(
    'triples',
    [0, 1, 2].reduce((s, n) => s + statSync(path.join(root, 'output', ctx.layout.triplesPart(n))).size, 0),
    2,
  );
});

test('preprocessing core-hours, measured as the stage preprocesses, and which of it and the device sets the pace', () => {
  const config = loadConfig(configFile);
  assert.ok(measured.preprocess.perCoreSecond > 0 && Number.isFinite(measured.preprocess.perCoreSecond));
  assert.equal(measured.preprocess.threads, os.availableParallelism(), 'decode_threads 0: every core');
  assert.equal(measured.providers, 'cpu');
  const p = planRun(config, measured, inputs(1_000_000));
  const device = p.embedding.reduce((h, e) => h + e.hours, 0);
  assert.ok(Math.abs(p.pace.deviceHours - device) < 1e-9, 'the three sessions share the device: their hours add up');
  assert.ok(Math.abs(p.preprocessing.coreHours - 1_000_000 / measured.preprocess.perCoreSecond / 3600) < 1e-9);
  assert.ok(Math.abs(p.preprocessing.hours - p.preprocessing.coreHours / measured.preprocess.threads) < 1e-9);
  // On the CPU provider inference and preprocessing share the cores: their hours add up.
  assert.equal(p.pace.sharedCores, true);
  assert.ok(Math.abs(p.pace.hours - (device + p.preprocessing.hours)) < 1e-9);
  // On a device, the slower of the two sets the pace.
  const onGpu = (perSecond: number): Measured => ({
    ...measured,
    providers: 'webgpu',
    encoders: Object.fromEntries(ENCODER_NAMES.map((e) => [e, { ...measured.encoders[e], perSecond }])) as Measured['encoders'],
  });
  const fast = planRun(config, onGpu(1e9), inputs(1_000_000));
  assert.deepEqual([fast.pace.sharedCores, fast.pace.setBy, fast.pace.hours], [false, 'preprocessing', fast.preprocessing.hours]);
  const slow = planRun(config, onGpu(1e-3), inputs(1_000_000));
  assert.deepEqual([slow.pace.setBy, slow.pace.hours], ['device', slow.pace.deviceHours]);
  assert.match(formatPlan(fast), /preprocessing sets it: .* hours on \d+ decode threads against .* device-hours for the three encoders/);
  assert.match(formatPlan(slow), /pace: the device sets it/);
  assert.match(formatPlan(p), /pace: inference and preprocessing share the CPU's cores/);
});

test('figures scale linearly with the images; index memory per shard stays bounded', () => {
  const config = loadConfig(configFile);
  const a = planRun(config, measured, inputs(10_000_000));
  const b = planRun(config, measured, inputs(20_000_000));
  const ratio = (x: number, y: number) => y / x;
  a.artifacts.forEach((art, i) => assert.ok(Math.abs(ratio(art.bytes, b.artifacts[i].bytes) - 2) < 1e-9, art.name));
  a.embedding.forEach((e, i) => assert.ok(Math.abs(ratio(e.hours, b.embedding[i].hours) - 2) < 1e-9, e.encoder));
  assert.equal(b.annotation.pairs, 2 * a.annotation.pairs);
  assert.equal(b.index.shards, 20);
  assert.equal(a.index.shards, 10);
  assert.deepEqual(
    b.index.perShard,
    a.index.perShard.map((s) => ({ ...s, shards: 20 })),
  );
  for (const e of ENCODER_NAMES) assert.equal(b.index.perShard[0].memoryBytes[e], shardBytes(1_000_000, measured.encoders[e].dim, config.index.m));
});

test('routed shards (index.probe_shards): sized as cells of the space, up to 15% over an equal share', () => {
  const config = loadConfig(configFile);
  const routed = { ...config, index: { ...config.index, probe_shards: 2 } };
  const p = planRun(routed, measured, inputs(19_500_000));
  assert.equal(p.index.shards, 20);
  assert.deepEqual(
    p.index.perShard.map((s) => [s.shards, s.images]),
    [[20, Math.ceil((1.15 * 19_500_000) / 20)]],
  );
  assert.equal(p.index.shardSize, Math.ceil((1.15 * 19_500_000) / 20));
  // Each shard's rows are copied out of the parts: once for the index, probe_shards times for search.
  const bytes = (name: string) => p.artifacts.find((a) => a.name === name)?.bytes;
  const vector = measured.encoders.caption.dim * 4 + 4;
  assert.equal(bytes('assigned/caption'), 19_500_000 * vector);
  assert.equal(bytes('routed/caption'), 2 * 19_500_000 * vector);
  assert.equal(planRun(config, measured, inputs(19_500_000)).artifacts.filter((a) => a.name.startsWith('routed/')).length, 0, 'none unless routed');
});

test('an openai annotator: online and batch cost and wall time, whichever mode is configured', () => {
  const price = { 'internvl2-26b': { prompt: 0.5, completion: 1.5 }, 'llama-3-8b': { prompt: 0.1, completion: 0.2 } };
  const openai = { base_url: 'http://127.0.0.1:9/v1', mllm: 'internvl2-26b', llm: 'llama-3-8b', concurrency: 16, price };
  const online = planRun(parseConfig({ ...demoConfigObject('/nowhere', root), annotate: { annotator: 'openai', openai } }), measured, inputs(1_000_000, 1));
  const batch = planRun(
    parseConfig({
      ...demoConfigObject('/nowhere', root),
      annotate: { annotator: 'openai', openai: { ...openai, mode: 'batch', batch: { expected_hours: 6 } } },
    }),
    measured,
    inputs(1_000_000, 1),
  );
  const expected = 1 * (1200 * 0.5 + 110 * 1.5 + 900 * 0.1 + 80 * 0.2);
  for (const plan of [online, batch]) {
    const m = plan.annotation.modes!;
    assert.ok(Math.abs(m.online.costUsd! - expected) < 1e-6, `online ${m.online.costUsd} vs ${expected}`);
    assert.ok(Math.abs(m.batch.costUsd! - expected / 2) < 1e-6, 'batch: half the online price by default');
    assert.ok(m.online.hours > 0);
  }
  assert.ok(Math.abs(online.annotation.costUsd! - expected) < 1e-6);
  assert.ok(Math.abs(batch.annotation.costUsd! - expected / 2) < 1e-6, 'the configured mode prices the run');
  assert.equal(batch.annotation.modes!.batch.hours, 12, 'two rounds of expected_hours');
  assert.ok(batch.annotation.modes!.batch.chosen && !batch.annotation.modes!.online.chosen);
  // Online time scales with the endpoints' concurrency; a requests_per_s bound caps it.
  const doubled = planRun(
    parseConfig({ ...demoConfigObject('/nowhere', root), annotate: { annotator: 'openai', openai: { ...openai, concurrency: 32 } } }),
    measured,
    inputs(1_000_000, 1),
  );
  assert.ok(Math.abs(online.annotation.modes!.online.hours / doubled.annotation.modes!.online.hours - 2) < 1e-9);
  const capped = planRun(
    parseConfig({ ...demoConfigObject('/nowhere', root), annotate: { annotator: 'openai', openai: { ...openai, requests_per_s: 1 } } }),
    measured,
    inputs(1_000_000, 1),
  );
  assert.ok(Math.abs(capped.annotation.modes!.online.hours - 1_000_000 / 3600) < 1e-6);
  const text = formatPlan(batch);
  assert.match(text, /online: \$[\d.]+, about [\d.]+ h/);
  assert.match(text, /batch \(configured\): \$[\d.]+, about 12\.0 h/);
});

test('an openai annotator: requests and tokens per model, and cost where annotate.openai.price sets it', () => {
  const config = parseConfig({
    ...demoConfigObject('/nowhere', root),
    annotate: { annotator: 'openai', openai: { base_url: 'http://127.0.0.1:9/v1', mllm: 'internvl2-26b', llm: 'llama-3-8b' } },
  });
  const unpriced = planRun(config, measured, inputs(20_000_000, 1.3));
  assert.equal(unpriced.annotation.requests.describe, 26_000_000);
  assert.equal(unpriced.annotation.requests.instruct, 26_000_000);
  assert.deepEqual(unpriced.annotation.tokens, {
    'internvl2-26b': { prompt: 1200 * 26_000_000, completion: 110 * 26_000_000 },
    'llama-3-8b': { prompt: 900 * 26_000_000, completion: 80 * 26_000_000 },
  });
  assert.equal(unpriced.annotation.costUsd, undefined);
  assert.deepEqual(unpriced.annotation.unpricedModels, ['internvl2-26b', 'llama-3-8b']);
  // The price key (USD per million tokens per model) as the annotation settings carry it.
  Object.assign(config.annotate.openai!, { price: { 'internvl2-26b': { prompt: 0.5, completion: 1.5 }, 'llama-3-8b': { prompt: 0.1, completion: 0.2 } } });
  const priced = planRun(config, measured, inputs(20_000_000, 1.3));
  const expected = 26 * (1200 * 0.5 + 110 * 1.5 + 900 * 0.1 + 80 * 0.2);
  assert.ok(Math.abs(priced.annotation.costUsd! - expected) < 1e-6, `cost ${priced.annotation.costUsd}, expected ${expected}`);
  const twice = planRun(config, measured, inputs(40_000_000, 1.3));
  assert.ok(Math.abs(twice.annotation.costUsd! / priced.annotation.costUsd! - 2) < 1e-9);
  // The estimate from the prompts: the describe request carries two images and the WORD_NUM reply.
  const est = estimateTokens(config, 256);
  assert.ok(est.describe.prompt > 512 && est.describe.completion >= 80 && est.instruct.prompt > est.instruct.completion);
});

test('megapairs plan answers for the corpus listing and for --images 20000000', () => {
  const listed = megapairsPlan('--config', configFile, '--sample', '16');
  assert.equal(listed.plan.images, 150);
  assert.equal(listed.plan.annotation.pairsSource, 'previous run', 'the run of the first test left a summary.json');
  const rates = ENCODER_NAMES.map((e) => `--rate=${e}=1000`);
  const big = megapairsPlan('--config', configFile, '--images', '20000000', '--sample', '16', ...rates);
  assert.equal(big.plan.images, 20_000_000);
  assert.equal(big.plan.index.shards, 20);
  for (const e of big.plan.embedding) {
    assert.equal(e.source, 'given');
    assert.ok(Math.abs(e.hours - 20_000_000 / 1000 / 3600) < 1e-9);
  }
  const scale = 20_000_000 / 150;
  listed.plan.artifacts.forEach((a, i) => assert.ok(Math.abs(big.plan.artifacts[i].bytes / a.bytes / scale - 1) < 0.25, `${a.name} scales with the images`));
});

test('bad options and a stats file without its count get messages that name them', async () => {
  const bad = (args: string[]) =>
    spawnSync(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'src', 'cli', 'main.ts'), 'plan', ...args], { cwd: repoRoot, encoding: 'utf8' });
  const images = bad(['--config', configFile, '--images', 'lots']);
  assert.equal(images.status, 2);
  assert.match(images.stderr, /--images must be a positive number, not "lots"/);
  const rate = bad(['--config', configFile, '--rate', 'clip=10']);
  assert.equal(rate.status, 2);
  assert.match(rate.stderr, /--rate clip=10: the encoder must be one of visual_semantic, visual_pattern, caption/);
  const input = path.join(tempDir('plan-stats'), 'input');
  cpSync(await sampleSlice(), input, { recursive: true });
  writeFileSync(path.join(input, '00001_stats.json'), '{"count": 50}');
  const stats = bad(['--config', writeConfigFile(path.dirname(input), demoConfigObject(input, path.dirname(input)))]);
  assert.equal(stats.status, 1);
  assert.match(stats.stderr, /00001_stats\.json: no "successes" count/);
});
