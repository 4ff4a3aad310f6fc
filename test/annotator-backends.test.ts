// Annotator backends as plug-ins (src/annotate/backend.ts): a third backend, written as a new
// one is (test/toy-annotator.ts: one module with its schema entry), runs the annotate stage per
// unit, environment faults and the ledger included; and the two backends of src keep the
// artifact keys they had before they were backends, so no existing run recomputes.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Redis } from 'ioredis';
import sharp from 'sharp';
import { AnnotationError, type UnitPair } from '../src/annotate/annotator.ts';
import { ANNOTATOR_BACKENDS, annotatorBackend } from '../src/annotate/backends.ts';
import { readParquet } from '../src/artifacts/parquet.ts';
import { annotateSchema, ANNOTATOR_NAMES, configSchema, type Config } from '../src/config/schema.ts';
import { parseConfig } from '../src/config/load.ts';
import { readLedger } from '../src/ledger/ledger.ts';
import { pipelineStages } from '../src/pipeline.ts';
import { checkAnnotator } from '../src/preflight/annotator.ts';
import { digest } from '../src/core/digest.ts';
import { resolveRun } from '../src/provenance/resolve-run.ts';
import { createContext } from '../src/runner/context.ts';
import { runLocal, UnitError } from '../src/runner/local.ts';
import { ProgressReporter } from '../src/runner/progress.ts';
import { AnnotateStage } from '../src/stages/annotate.ts';
import { Rng } from '../src/util/rng.ts';
import { FakeServer } from './chat-server.ts';
import { demoConfigObject, duckdb, sampleSlice, tempDir } from './helpers.ts';
import { toyBackend, toySection, unitCalls } from './toy-annotator.ts';

/** Parsed as parseConfig does, with `schema`'s messages. */
function parseWith(schema: typeof toyConfigSchema, raw: unknown) {
  const r = schema.safeParse(raw);
  if (!r.success) throw new Error(r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('\n'));
  return r.data;
}

/** The config schema with the toy's entry, as src/config/schema.ts would have it. */
const toyConfigSchema = configSchema.extend({ annotate: annotateSchema([...ANNOTATOR_NAMES, 'toy'], { toy: toySection }) });

test('a third backend in one module (and its schema entry) runs the annotate stage per unit', async () => {
  const root = tempDir('toy-backend');
  const input = await sampleSlice();
  const toy = { word: 'hello', refuse_share: 0.3, unavailable_once: true };
  const config = toyConfigSchema.parse(
    demoConfigObject(input, root, { input: { path: input, max_shards: 2 }, annotate: { annotator: 'toy', toy } }),
  ) as unknown as Config;
  assert.throws(
    () => parseWith(toyConfigSchema, { input: { path: 'x' }, work: 'w', output: 'o', annotate: { annotator: 'toy' } }),
    /annotate\.toy: annotator "toy" needs its `toy:` section/,
  );
  // Registered with the stage: the pipeline's own annotate stage, given the backends it may use.
  const stages = pipelineStages().map((s) => (s.name === 'annotate' ? new AnnotateStage([...ANNOTATOR_BACKENDS, toyBackend]) : s));
  const ctx = createContext(config, undefined, stages);
  const resolved = await resolveRun(ctx, { record: true });
  assert.deepEqual(resolved.provenance.annotate.decidedBy, {
    'annotate.annotator': 'toy',
    'annotate.toy.word': 'hello',
    'annotate.toy.refuse_share': 0.3,
    'run.seed': 7,
  });
  const progress = new ProgressReporter(process.stderr, true);

  // The first attempt of each unit submits its batch and fails: the unit fails, nothing is written or ledgered for its pairs.
  await assert.rejects(runLocal(ctx, { progress, resolved }), (err: Error) => {
    assert.ok(err instanceof UnitError && err.stage === 'annotate', String(err));
    assert.match(err.message, /toy batch service: batch toy-batches\/part-0000\d\.jsonl submitted, not ready yet/);
    return true;
  });
  // Both units started at once (runner.concurrency 2), and both failed.
  for (const n of [0, 1]) assert.equal(await ctx.work.exists(ctx.layout.annotationsPart(n)), false);
  const afterFailure = (await readLedger(ctx)).filter((f) => f.stage === 'annotate');
  assert.deepEqual(afterFailure.map((f) => [f.unit, f.reason, f.retryable]).sort(), [
    ['part-00000', 'unit_failed', true],
    ['part-00001', 'unit_failed', true],
  ]);

  // The rerun finds the batches: each unit's pairs come in one call, refused ones go to the ledger.
  unitCalls.length = 0;
  const reports = await runLocal(ctx, { progress, resolved });
  const annotate = reports.find((r) => r.stage === 'annotate')!;
  const pairsOf = async (n: number) => (await readParquet<{ pair_id: string }>(ctx.work, ctx.layout.pairsPart(n))).length;
  const pairs = (await pairsOf(0)) + (await pairsOf(1));
  assert.ok(pairs > 10, `${pairs} pairs`);
  assert.deepEqual(
    unitCalls.sort((a, b) => a.unit.localeCompare(b.unit)),
    [
      { unit: 'part-00000', pairs: await pairsOf(0) },
      { unit: 'part-00001', pairs: await pairsOf(1) },
    ],
    'each unit ran again as one call with all its pairs',
  );
  const ledger = (await readLedger(ctx)).filter((f) => f.stage === 'annotate');
  assert.ok(ledger.length > 0 && ledger.every((f) => f.reason === 'toy_refused' && !f.retryable), JSON.stringify(ledger.slice(0, 3)));
  assert.equal(annotate.failed, ledger.length);
  const rows = await duckdb(`select * from '${ctx.output.uri('triples/*.parquet')}'`);
  assert.equal(rows.length, pairs - ledger.length);
  for (const r of rows) {
    assert.equal(r.annotator, 'toy');
    assert.equal(r.model, 'toy-1');
    assert.match(String(r.description), /^hello: /);
  }
  const refused = new Set(ledger.map((f) => f.item));
  assert.ok(rows.every((r) => !refused.has(String(r.pair_id))));

  // Its preflight is asked through the same list.
  assert.deepEqual(await toyBackend.preflight({ ...config, annotate: { annotator: 'toy', toy: { ...toy, word: 'forbidden' } } } as never, {}), [
    { key: 'annotate.toy.word', found: '"forbidden"', expected: 'another word' },
  ]);
});

/**
 * The annotate stage's key, per config, as the stage computed it before the backends (commit
 * e362928, `decidedBy` special-casing "openai"): the same digests, so no run recomputes.
 */
test('the template and openai backends keep the annotate keys they had before', async () => {
  const base = { input: { path: '/in' }, work: '/w', output: '/o' };
  const openaiFull = {
    base_url: 'http://x/v1',
    api_key_env: 'K',
    mllm: 'm',
    llm: 'l',
    describe: { base_url: 'http://d/v1', model: 'dm', concurrency: 4, requests_per_s: 2, tokens_per_min: 1000 },
    instruct: { api_key_env: 'K2', concurrency: 5 },
    word_num: [50, 70],
    word_num_tolerance: 0.3,
    demonstrations: 4,
    min_instructions: 4,
    instruction_words: [3, 30],
    structured_output: false,
    image_size: 384,
    temperature: 0.2,
    max_tokens: 300,
    concurrency: 16,
    requests_per_s: 5,
    tokens_per_min: 9999,
    timeout_ms: 1000,
    attempts: 5,
    down_after_s: 60,
    retry_every_s: 2,
    price: { m: { prompt: 1, completion: 2 } },
  };
  const before: Array<[string, object, string]> = [
    ['template', {}, '4d49ea92ea68'],
    ['template, seed 7', { run: { seed: 7 } }, '805ed49b7b99'],
    ['template beside an openai section', { annotate: { annotator: 'template', openai: { base_url: 'http://x/v1', mllm: 'm' } } }, '4d49ea92ea68'],
    ['openai, one model', { annotate: { annotator: 'openai', openai: { base_url: 'http://x/v1', mllm: 'm' } } }, '42c353894cbf'],
    [
      'openai, two models',
      { annotate: { annotator: 'openai', openai: { base_url: 'http://x/v1', mllm: 'internvl2-26b', llm: 'llama-3-8b' } } },
      'f2c78ebc5be4',
    ],
    ['openai, every setting', { run: { seed: 3 }, annotate: { annotator: 'openai', openai: openaiFull } }, 'cc7cd7d63aff'],
    // Where and how fast the endpoints are asked, and what they cost, decide nothing.
    [
      'openai, every setting, other endpoints, limits and prices',
      {
        run: { seed: 3 },
        annotate: {
          annotator: 'openai',
          openai: {
            ...openaiFull,
            base_url: 'http://elsewhere/v1',
            api_key_env: 'OTHER',
            describe: { model: 'dm', concurrency: 1 },
            instruct: {},
            concurrency: 2,
            requests_per_s: 1,
            tokens_per_min: undefined,
            timeout_ms: 5000,
            down_after_s: 10,
            retry_every_s: 1,
            price: undefined,
          },
        },
      },
      'cc7cd7d63aff',
    ],
  ];
  const stage = new AnnotateStage();
  for (const [name, over, key] of before) {
    const config = parseConfig({ ...base, ...over });
    assert.equal(digest(await stage.decidedBy({ config } as never)), key, name);
  }
  // A prompt setting or a model does decide.
  const changed = parseConfig({ ...base, run: { seed: 3 }, annotate: { annotator: 'openai', openai: { ...openaiFull, temperature: 0.3 } } });
  assert.notEqual(digest(await stage.decidedBy({ config: changed } as never)), 'cc7cd7d63aff');
  // An unknown backend is named where it is read.
  assert.throws(() => stage.decidedBy({ config: { annotate: { annotator: 'nope' } } } as never), /annotate\.annotator: no annotator backend "nope"/);
  assert.deepEqual(await checkAnnotator(parseConfig(base), {}), [], 'template: nothing to check');
});

/** Two pairs of distinct 16x16 PNGs, with their rngs. */
async function unitPairs(): Promise<UnitPair[]> {
  const png = (k: number) =>
    sharp({ create: { width: 16, height: 16, channels: 3, background: { r: (k * 53) % 256, g: (k * 101) % 256, b: 7 } } })
      .png()
      .toBuffer();
  return Promise.all(
    [0, 1].map(async (i): Promise<UnitPair> => {
      const [q, t] = await Promise.all([png(2 * i), png(2 * i + 1)]);
      return {
        pairId: `p${i}`,
        relation: 'visual_semantic',
        similarity: 0.9,
        query: { key: `q${i}`, caption: 'a cat', bytes: async () => q },
        target: { key: `t${i}`, caption: 'a dog', bytes: async () => t },
        rng: new Rng(i),
      };
    }),
  );
}

test("the runner's shared limits reach the backend: a distributed context's are held in its Redis", async (t) => {
  const server = new FakeServer();
  const url = await server.start();
  t.after(() => server.stop());
  const prefix = `megapairs-test-backend-limits-${process.pid}-${Date.now()}`;
  const redis = new Redis({ host: '127.0.0.1', port: 6379 });
  t.after(async () => {
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length) await redis.del(...keys);
    redis.disconnect();
  });
  const configOf = (runner: string, redisSettings: object = {}, model = 'm') =>
    parseConfig({
      input: { path: '/in' },
      work: tempDir('backend-limits'),
      output: '/o',
      runner: { kind: runner },
      redis: { prefix, ...redisSettings },
      annotate: { annotator: 'openai', openai: { base_url: url, mllm: model, attempts: 1, requests_per_s: 100, tokens_per_min: 1_000_000 } },
    });
  const annotate = async (config: Config) => {
    const ctx = createContext(config);
    const annotator = await annotatorBackend(config).open(config, { work: ctx.work, sharedLimits: ctx.sharedLimits, env: {} });
    return annotator.annotateUnit(await unitPairs(), { unit: 'part-00000', pairDone: () => {} }).finally(() => ctx.sharedLimits?.close());
  };

  // Local: the process's own limits; nothing in Redis.
  const local = await annotate(configOf('local'));
  assert.ok(local.results.every((r) => !(r instanceof AnnotationError)));
  assert.deepEqual(await redis.keys(`${prefix}:*`), []);
  // Distributed: every request took a slot of the endpoint's limit in the run's Redis.
  server.requests.length = 0;
  const distributed = await annotate(configOf('distributed', { url: 'redis://127.0.0.1:6379' }));
  assert.ok(distributed.results.every((r) => !(r instanceof AnnotationError)));
  assert.equal(server.requests.length, 4, 'both steps of both pairs');
  // The request rate's next start and the token bucket stay after the leases are released.
  const keys = (await redis.keys(`${prefix}:*`)).map((k) => k.replace(/:[0-9a-f]{16}:/, ':<endpoint>:')).sort();
  assert.deepEqual(
    keys,
    ['describe', 'instruct'].flatMap((step) => [`${prefix}:annotate:${step}:<endpoint>:next`, `${prefix}:annotate:${step}:<endpoint>:tokens`]),
  );
  // A Redis that cannot be reached fails the unit (the environment's fault), never its pairs.
  const gone = new FakeServer();
  const port = new URL(await gone.start()).port;
  await gone.stop(); // nothing listens there now
  await assert.rejects(
    // Another model: a process keeps one endpoint per model and server, with the limits it first had.
    annotate(configOf('distributed', { url: `redis://127.0.0.1:${port}`, prefix: `${prefix}-unreachable` }, 'm2')),
    /cannot reach Redis at redis:\/\/127\.0\.0\.1:\d+/,
  );
});
