// annotate.openai.mode: batch in whole runs against the test server's Batch API
// (chat-server-batches.ts): the same requests, triples and ledger as an online run of the same
// config; a kill -9 while batches run, then a rerun, submits no request twice; and through the
// backend's unit entry, an expired batch costs only its unfinished requests again and a
// 20,000-pair unit splits its files under the limits.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import sharp from 'sharp';
import type { UnitPair } from '../src/annotate/annotator.ts';
import { openaiBackend } from '../src/annotate/openai.ts';
import { requestHash } from '../src/annotate/request-cache.ts';
import { parseConfig } from '../src/config/load.ts';
import { readLedger } from '../src/ledger/ledger.ts';
import { resolveRun } from '../src/provenance/resolve-run.ts';
import { createContext } from '../src/runner/context.ts';
import { runLocal } from '../src/runner/local.ts';
import { prepareRetry } from '../src/runner/retry-local.ts';
import { ProgressReporter } from '../src/runner/progress.ts';
import { summarize } from '../src/report/summary.ts';
import { writeRunReport } from '../src/report/write-report.ts';
import { AnnotateStage } from '../src/stages/annotate.ts';
import { LocalStorage } from '../src/storage/local.ts';
import { Rng } from '../src/util/rng.ts';
import { FakeServer, good, isDescribe, status400, status500 } from './chat-server.ts';
import { demoConfigObject, duckdb, sampleSlice, tempDir, writeConfigFile } from './helpers.ts';
import { byImage, MODELS, openaiConfig, PRICED, runCli, sharedServer } from './pipeline-openai-fixture.ts';

const { server, url } = sharedServer({ models: MODELS });

/** The runs of this file: a slice's first shard, two attempts a request, priced. */
const runConfig = (root: string, input: string, url: string, openai: Record<string, unknown> = {}) =>
  openaiConfig(root, input, url, { ...PRICED, ...openai }, 1);

const batchMode = { mode: 'batch', batch: { poll_interval_s: 0.05 } };

const chatBodies = (from: number, batch: boolean) =>
  server.requests
    .slice(from)
    .filter((r) => r.url.endsWith('/chat/completions') && Boolean(r.headers['x-megapairs-batch']) === batch)
    .map((r) => requestHash(r.body));

async function triplesOf(ctx: ReturnType<typeof createContext>) {
  return duckdb(`select * exclude (created_at) from '${ctx.output.uri('triples/*.parquet')}' order by pair_id`).catch(() =>
    duckdb(`select * from '${ctx.output.uri('triples/*.parquet')}' order by pair_id`),
  );
}

test("a batch run sends the online run's requests and writes its triples and ledger; the annotate key is the same", { timeout: 240_000 }, async () => {
  server.plan([], byImage);
  const input = await sampleSlice();
  const onlineCtx = createContext(parseConfig(runConfig(tempDir('batch-vs-online-a'), input, url())));
  let from = server.requests.length;
  let t0 = Date.now();
  await runLocal(onlineCtx, { progress: new ProgressReporter(process.stderr, true) });
  const onlineS = (Date.now() - t0) / 1000;
  const onlineBodies = new Set(chatBodies(from, false));

  const batchCtx = createContext(parseConfig(runConfig(tempDir('batch-vs-online-b'), input, url(), batchMode)));
  from = server.requests.length;
  const created = server.batches.batchesCreated;
  t0 = Date.now();
  await runLocal(batchCtx, { progress: new ProgressReporter(process.stderr, true) });
  const batchS = (Date.now() - t0) / 1000;
  const batchBodies = chatBodies(from, true);
  process.stderr.write(
    `[batch vs online] ${onlineBodies.size} requests; online run ${onlineS.toFixed(1)} s; batch run ${batchS.toFixed(1)} s, ${server.batches.batchesCreated - created} batches\n`,
  );
  assert.equal(chatBodies(from, false).length, 0, 'a batch run sends no online request');
  assert.ok(server.batches.batchesCreated > created);
  // The very same requests, each once: the bodies are built alike, key for key.
  assert.deepEqual(new Set(batchBodies), onlineBodies);
  assert.equal(batchBodies.length, onlineBodies.size);

  const [online, batch] = [await triplesOf(onlineCtx), await triplesOf(batchCtx)];
  assert.ok(online.length > 10);
  assert.deepEqual(batch, online);
  const ledger = async (ctx: typeof onlineCtx) =>
    (await readLedger(ctx))
      .filter((f) => f.stage === 'annotate')
      .map(({ item, reason, message }) => ({ item, reason, message }))
      .sort((a, b) => a.item.localeCompare(b.item));
  const onlineLedger = await ledger(onlineCtx);
  assert.ok(onlineLedger.length > 0, 'some pairs are refused on every attempt');
  assert.deepEqual(await ledger(batchCtx), onlineLedger);

  // The mode decides nothing: the annotate stage's key is the online run's.
  const stage = new AnnotateStage();
  assert.deepEqual(stage.decidedBy(batchCtx), stage.decidedBy(onlineCtx));

  // summary.json shows the batches, their states and times, and prices them at the batch price.
  const batchSummary = await summarize(batchCtx, []);
  const a = batchSummary.annotation!;
  // The run report page lists them too.
  const html = readFileSync(await writeRunReport(batchCtx, batchSummary), 'utf8');
  assert.match(html, new RegExp(`batches: ${a.batches!.count} \\(completed ${a.batches!.count}\\)`));
  for (const b of a.batches!.list) assert.ok(html.includes(b.batch_id!), b.batch_id);
  assert.ok(a.batches && a.batches.count > 0, JSON.stringify(a.batches));
  assert.equal(a.batches.by_status.completed, a.batches.count);
  assert.ok(a.batches.list.every((b) => b.transitions.some((t) => t.status === 'completed')));
  assert.equal(a.endpoints.describe.requests + a.endpoints.instruct.requests, batchBodies.length);
  const o = (await summarize(onlineCtx, [])).annotation!;
  assert.ok(Math.abs(a.cost_usd! - o.cost_usd! * 0.5) < 1e-6, `${a.cost_usd} vs half of ${o.cost_usd}`);
});

test('kill -9 while batches run, then a rerun: no request is submitted twice', { timeout: 240_000 }, async () => {
  const slow = new FakeServer({ models: MODELS, batch: { inProgressMs: 1500, validatingMs: 200 } });
  const url = await slow.start();
  try {
    const input = await sampleSlice();
    const root = tempDir('batch-kill');
    const configFile = writeConfigFile(root, runConfig(root, input, url, batchMode));
    const first = runCli(configFile);
    const deadline = Date.now() + 180_000;
    // Killed once a batch is running and none has ended yet.
    while (slow.batches.batchesCreated < 1) {
      assert.ok(Date.now() < deadline, `no batch was created: ${first.stderr()}`);
      await new Promise((r) => setTimeout(r, 5));
    }
    await new Promise((r) => setTimeout(r, 300));
    first.child.kill('SIGKILL');
    assert.equal(await first.done, -1);
    const createdBeforeRerun = slow.batches.batchesCreated;

    const second = runCli(configFile);
    assert.equal(await second.done, 0, second.stderr());
    assert.equal(
      slow.batches.submittedTwice,
      0,
      `no custom_id went in two batches: ${second
        .stderr()
        .split('\n')
        .filter((l) => l.includes('[annotate]'))
        .join('\n')}`,
    );
    assert.ok([...slow.batches.submittedByBody.values()].every((n) => n === 1));
    assert.ok(slow.batches.batchesCreated > createdBeforeRerun, 'the rerun went on to the instruct requests');
    const ctx = createContext(parseConfig(runConfig(root, input, url, batchMode)));
    await resolveRun(ctx);
    const summary = await summarize(ctx, []);
    const pairs = Object.values(summary.pairs).reduce((x, y) => x + y, 0);
    const ledgered = (await readLedger(ctx)).filter((f) => f.stage === 'annotate');
    assert.deepEqual(ledgered, []);
    assert.equal(summary.triples, pairs);
    assert.ok(
      summary.annotation!.batches!.list.some((b) => b.adopted),
      "the rerun adopted the killed run's batch",
    );
    process.stderr.write(
      `[batch kill] batches ${slow.batches.batchesCreated}, files ${slow.batches.filesUploaded}, lines ${slow.batches.linesAnswered}, distinct bodies ${slow.batches.submittedByBody.size}\n`,
    );
  } finally {
    await slow.stop();
  }
});

// ---------------------------------------------------------------------------------------------
// Through the backend's unit entry (what the stage calls).

async function unitPairs(count: number): Promise<UnitPair[]> {
  const png = async (r: number) =>
    sharp({ create: { width: 8, height: 8, channels: 3, background: { r, g: 40, b: 90 } } })
      .png()
      .toBuffer();
  const [a, b] = [await png(10), await png(200)];
  return Array.from({ length: count }, (_, i) => ({
    pairId: `p${i}`,
    relation: 'visual_semantic',
    similarity: 0.9,
    query: { key: 'a.png', caption: 'a', bytes: async () => a },
    target: { key: 'b.png', caption: 'b', bytes: async () => b },
    rng: Rng.for(7, 'annotate', `pair-${i}`),
  })) as UnitPair[];
}

function unitConfig(root: string, url: string, batch: Record<string, unknown>) {
  return parseConfig(
    demoConfigObject('/nonexistent', root, {
      annotate: {
        annotator: 'openai',
        openai: { base_url: url, mllm: MODELS[0], llm: MODELS[1], image_size: 64, mode: 'batch', batch: { poll_interval_s: 0.05, ...batch } },
      },
    }),
  );
}

test('an expired batch costs only its unfinished requests again', { timeout: 120_000 }, async () => {
  server.plan([]);
  const root = tempDir('batch-expired');
  const config = unitConfig(root, url(), {});
  const annotator = await openaiBackend.open(config, { work: new LocalStorage(path.join(root, 'work')), env: {} });
  const pairs = await unitPairs(40);
  const before = new Map(server.batches.submittedByBody);
  const created = server.batches.batchesCreated;
  // The unit's first batch answers 15 lines, then expires.
  server.batches.plan([{ holdAfterLines: 15, expireAfterMs: 200 }]);
  const { results, tally } = await annotator.annotateUnit(pairs, { unit: 'part-00000', pairDone() {} });
  server.batches.plan([]);
  assert.ok(
    results.every((r) => !(r instanceof Error)),
    'every pair annotated',
  );
  const submissions = [...server.batches.submittedByBody].filter(([h, n]) => n !== (before.get(h) ?? 0)).map(([h, n]) => [h, n - (before.get(h) ?? 0)]);
  const twice = submissions.filter(([, n]) => n === 2).length;
  // 40 describe + 40 instruct requests; the 25 the expired batch did not run went again, once.
  assert.equal(submissions.length, 80);
  assert.equal(twice, 25);
  assert.ok(submissions.every(([, n]) => n === 1 || n === 2));
  const statuses = tally.batches!.map((b) => b.status);
  assert.deepEqual(statuses.sort(), ['completed', 'completed', 'expired']);
  assert.equal(server.batches.batchesCreated - created, 3);
});

test('a server that refuses response_format: every pair of the round asks again without it, none is ledgered', { timeout: 120_000 }, async () => {
  // Every instruct line asking for structured output gets a 400, as from a server that does not do it.
  server.plan([], (req, res, body) => (!isDescribe(body) && body.response_format ? status400(req, res, body) : good(req, res, body)));
  const root = tempDir('batch-unstructured');
  const annotator = await openaiBackend.open(unitConfig(root, url(), {}), { work: new LocalStorage(path.join(root, 'work')), env: {} });
  const { results } = await annotator.annotateUnit(await unitPairs(6), { unit: 'part-00000', pairDone() {} });
  server.plan([]);
  assert.deepEqual(
    results.map((r) => (r instanceof Error ? r.message : 'annotated')),
    Array(6).fill('annotated'),
  );
});

test('a 20,000-pair unit splits its files under the limits', { timeout: 300_000 }, async () => {
  server.plan([]);
  const big = new FakeServer({ models: MODELS, batch: { concurrency: 64, maxRequests: 6000 } });
  const url = await big.start();
  try {
    const root = tempDir('batch-split');
    const config = unitConfig(root, url, { max_requests_per_file: 6000, max_file_mb: 20 });
    const annotator = await openaiBackend.open(config, { work: new LocalStorage(path.join(root, 'work')), env: {} });
    const pairs = await unitPairs(20_000);
    const started = Date.now();
    const { results, tally } = await annotator.annotateUnit(pairs, { unit: 'part-00000', pairDone() {} });
    const seconds = (Date.now() - started) / 1000;
    assert.equal(results.filter((r) => !(r instanceof Error)).length, 20_000);
    const files = [...big.batches.files.values()].filter((f) => f.obj.purpose === 'batch');
    const lines = files.map((f) => f.bytes.toString('utf8').split('\n').filter(Boolean).length);
    assert.ok(
      files.every((f) => f.obj.bytes <= 20 * 1024 * 1024),
      'every file within max_file_mb',
    );
    assert.ok(
      lines.every((n) => n <= 6000),
      `lines per file ${lines}`,
    );
    assert.equal(
      lines.reduce((x, y) => x + y, 0),
      40_000,
    );
    assert.ok(files.length >= 8, `${files.length} files`);
    assert.equal(big.batches.submittedTwice, 0);
    assert.ok(tally.batches!.every((b) => b.status === 'completed'));
    process.stderr.write(
      `[batch split] 20000 pairs: ${files.length} files (${lines.join(', ')} lines; largest ${Math.max(...files.map((f) => f.obj.bytes))} bytes), ${big.batches.batchesCreated} batches, ${seconds.toFixed(1)} s\n`,
    );
  } finally {
    await big.stop();
  }
});

test('batch mode: an environment fault that outlasts the follow-up batches fails the unit; retry-failed and a rerun pay only for what is missing', {
  timeout: 240_000,
}, async () => {
  // The describe lines answer; every instruct line gets a 500 (the server's fault, not the pair's).
  server.plan([], (req, res, body) => (isDescribe(body) ? good(req, res, body) : status500(req, res, body)));
  const input = await sampleSlice();
  const root = tempDir('batch-env-fault');
  const ctx = createContext(parseConfig(runConfig(root, input, url(), { ...batchMode, batch: { ...batchMode.batch, attempts: 2 } })));
  const before = new Map(server.batches.submittedByBody);
  await assert.rejects(runLocal(ctx, { progress: new ProgressReporter(process.stderr, true) }), /annotate part-00000 failed/);
  const failures = await readLedger(ctx);
  assert.deepEqual(
    failures.map((f) => [f.stage, f.reason]),
    [['annotate', 'unit_failed']],
    'the unit failed for the environment; no pair was ledgered for it',
  );
  assert.ok(!existsSync(path.join(root, 'work', ctx.layout.annotationsPart(0))), 'no annotations written');

  server.plan([], good);
  const retry = await prepareRetry(ctx);
  assert.deepEqual(retry.units, ['annotate part-00000']);
  await runLocal(ctx, { progress: new ProgressReporter(process.stderr, true) });
  assert.deepEqual(await readLedger(ctx), [], 'the retried unit cleared its failure');
  // Describe requests go to the MLLM: the request cache says which model each kept reply is from.
  const cache = path.join(root, 'work', 'requests');
  const describeHashes = new Set(
    readdirSync(cache)
      .filter((d) => d.length === 2)
      .flatMap((d) => readdirSync(path.join(cache, d)).map((f) => JSON.parse(readFileSync(path.join(cache, d, f), 'utf8'))))
      .filter((kept) => kept.model === MODELS[0])
      .map((kept) => kept.request),
  );
  const submitted = [...server.batches.submittedByBody].map(([h, n]) => [h, n - (before.get(h) ?? 0)] as const).filter(([, n]) => n > 0);
  const describes = submitted.filter(([h]) => describeHashes.has(h));
  assert.ok(describes.length > 0, `${describeHashes.size} describe bodies seen, ${submitted.length} submitted`);
  assert.ok(
    describes.every(([, n]) => n === 1),
    'every describe request was submitted once: the rerun read them from the request cache',
  );
  // An instruct request went once per follow-up of the failed run (attempts: 2), then once more after retry-failed.
  const instructs = submitted.filter(([h]) => !describeHashes.has(h));
  assert.ok(instructs.length > 0 && instructs.every(([, n]) => n === 3), JSON.stringify(instructs.map(([, n]) => n)));
  assert.ok((await triplesOf(ctx)).length > 0);
});
