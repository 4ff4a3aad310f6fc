// The whole pipeline with the `openai` annotator against a real HTTP server speaking the
// chat-completions API: pairs whose source image the server dislikes get a reply without the
// Source/Target structure on every attempt and must end in the ledger; the rest become triples.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, test } from 'node:test';
import { readLedger } from '../src/ledger/ledger.ts';
import { createContext } from '../src/runner/context.ts';
import { runLocal } from '../src/runner/local.ts';
import { ProgressReporter } from '../src/runner/progress.ts';
import { summarize } from '../src/runner/summary.ts';
import { FakeServer, GOOD_DESCRIPTION, GOOD_INSTRUCTIONS, isDescribe, reply, type Handler } from './chat-server.ts';
import { demoConfig, duckdb, sampleSlice, tempDir } from './helpers.ts';

const server = new FakeServer();
let baseUrl: string;
before(async () => {
  baseUrl = await server.start();
});
after(() => server.stop());

/** The source image's data URL decides, so every attempt for one pair gets the same answer. */
const dislikes = (body: any) => createHash('sha256').update(body.messages[0].content[1].image_url.url).digest()[0] % 4 === 0;

const byImage: Handler = (_req, res, body) => {
  if (!isDescribe(body)) return reply(res, body, JSON.stringify(GOOD_INSTRUCTIONS));
  reply(res, body, dislikes(body) ? 'Two pictures.' : GOOD_DESCRIPTION);
};

test('openai annotator in a run: good replies become triples, malformed ones go to the ledger', async () => {
  server.plan([], byImage);
  const root = tempDir('openai-run');
  const input = await sampleSlice();
  process.env.MEGAPAIRS_PIPELINE_TEST_KEY = 'sk-pipeline-test';
  const config = demoConfig(input, root, {
    input: { path: input, max_shards: 1 },
    annotate: {
      annotator: 'openai',
      openai: { base_url: baseUrl, api_key_env: 'MEGAPAIRS_PIPELINE_TEST_KEY', mllm: 'internvl2-26b', llm: 'llama-3-8b', concurrency: 4, attempts: 2 },
    },
  });
  const ctx = createContext(config);
  await runLocal(ctx, { progress: new ProgressReporter(process.stderr, true) });

  const summary = await summarize(ctx, []);
  const pairs = Object.values(summary.pairs).reduce((a, b) => a + b, 0);
  const malformed = (await readLedger(ctx.work)).filter((f) => f.stage === 'annotate');
  assert.ok(pairs > 10, `only ${pairs} pairs from 50 images`);
  assert.ok(malformed.length > 0 && malformed.length < pairs, `${malformed.length} of ${pairs} pairs failed`);
  for (const f of malformed) {
    assert.equal(f.reason, 'description_off_template');
    assert.match(f.message, new RegExp(f.item));
    assert.match(f.where, /-> /);
  }
  assert.equal(summary.triples + malformed.length, pairs, 'every pair is a triple or in the ledger');
  assert.equal(summary.failures['annotate/description_off_template'], malformed.length);

  const rows = await duckdb(`select * from '${ctx.output.uri('triples/*.parquet')}'`);
  assert.equal(rows.length, summary.triples);
  for (const r of rows) {
    assert.equal(r.annotator, 'openai');
    assert.equal(r.model, 'internvl2-26b+llama-3-8b');
    assert.equal(r.description, GOOD_DESCRIPTION);
    assert.deepEqual(r.q_text, GOOD_INSTRUCTIONS);
  }
  // Every request carried the key from the environment, and the run's requests used both models.
  assert.ok(server.requests.every((r) => r.headers.authorization === 'Bearer sk-pipeline-test'));
  assert.deepEqual([...new Set(server.requests.map((r) => r.body.model))].sort(), ['internvl2-26b', 'llama-3-8b']);
});
