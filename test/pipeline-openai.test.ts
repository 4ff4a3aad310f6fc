// The whole pipeline with the `openai` annotator against a real HTTP server speaking the
// chat-completions API: pairs whose source image the server dislikes get a reply without the
// Source/Target structure on every attempt and must end in the ledger; the rest become triples.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import { parseConfig } from '../src/config/load.ts';
import { readLedger } from '../src/ledger/ledger.ts';
import { resolveRun } from '../src/provenance/resolve-run.ts';
import { createContext } from '../src/runner/context.ts';
import { runLocal } from '../src/runner/local.ts';
import { ProgressReporter } from '../src/runner/progress.ts';
import { summarize } from '../src/report/summary.ts';
import { FakeServer, GOOD_DESCRIPTION, GOOD_INSTRUCTIONS } from './chat-server.ts';
import { duckdb, sampleSlice, tempDir, writeConfigFile } from './helpers.ts';
import { byImage, openaiConfig, PRICED, runCli, sharedServer } from './pipeline-openai-fixture.ts';

const { server, url } = sharedServer();

test('openai annotator in a run: good replies become triples, malformed ones go to the ledger', async () => {
  server.plan([], byImage);
  const root = tempDir('openai-run');
  const input = await sampleSlice();
  process.env.MEGAPAIRS_PIPELINE_TEST_KEY = 'sk-pipeline-test';
  const config = parseConfig(openaiConfig(root, input, url(), { api_key_env: 'MEGAPAIRS_PIPELINE_TEST_KEY', ...PRICED }, 1));
  const ctx = createContext(config);
  await runLocal(ctx, { progress: new ProgressReporter(process.stderr, true) });

  const summary = await summarize(ctx, []);
  const pairs = Object.values(summary.pairs).reduce((a, b) => a + b, 0);
  const malformed = (await readLedger(ctx)).filter((f) => f.stage === 'annotate');
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

  // summary.json's annotation section agrees with what the server saw.
  const sent = (model: string) => server.requests.filter((r) => r.body.model === model).length;
  const a = summary.annotation!;
  assert.equal(a.endpoints.describe.requests, sent('internvl2-26b'));
  assert.equal(a.endpoints.instruct.requests, sent('llama-3-8b'));
  // A pair two spaces both mined sends the same requests: the second is served without one
  // (counted as cached), and its annotation's tokens are those of the one reply.
  const used = (model: string, step: 'describe' | 'instruct') => sent(model) + a.endpoints[step].cached;
  assert.deepEqual(a.tokens['internvl2-26b'], { prompt: 100 * used('internvl2-26b', 'describe'), completion: 10 * used('internvl2-26b', 'describe') });
  assert.deepEqual(a.tokens['llama-3-8b'], { prompt: 100 * used('llama-3-8b', 'instruct'), completion: 10 * used('llama-3-8b', 'instruct') });
  const usd = ((100 * 0.5 + 10 * 1.5) * used('internvl2-26b', 'describe')) / 1e6 + ((100 * 0.1 + 10 * 0.2) * used('llama-3-8b', 'instruct')) / 1e6;
  assert.ok(Math.abs(a.cost_usd! - usd) < 1e-6, `${a.cost_usd} vs ${usd}`);
});

// ---------------------------------------------------------------------------------------------
// Every paid call kept, no loss from passing trouble: real runs against a server with latency.

test('kill -9 mid-annotate, rerun: no request answered before the kill is sent again', { timeout: 240_000 }, async () => {
  // It lists the models the config names: the CLI's preflight asks GET /models.
  const slow = new FakeServer({ latencyMs: 40, slots: 8, models: ['internvl2-26b', 'llama-3-8b'] });
  const url = await slow.start();
  try {
    const input = await sampleSlice();
    // One clean run: the requests a run needs.
    const cleanRoot = tempDir('openai-clean');
    const clean = createContext(parseConfig(openaiConfig(cleanRoot, input, url)));
    await runLocal(clean, { progress: new ProgressReporter(process.stderr, true) });
    const cleanRequests = slow.requests.length;
    const cleanTriples = (await summarize(clean, [])).triples;
    assert.ok(cleanRequests > 40, `only ${cleanRequests} requests`);

    // The same run in a child process, killed once it is well into annotate.
    slow.plan([]);
    const root = tempDir('openai-kill');
    const configFile = writeConfigFile(root, openaiConfig(root, input, url));
    const first = runCli(configFile);
    const deadline = Date.now() + 180_000;
    while (slow.requests.length < cleanRequests / 2) {
      assert.ok(Date.now() < deadline, `the run never got halfway through annotate: ${first.stderr()}`);
      await new Promise((r) => setTimeout(r, 5));
    }
    const killedAt = Date.now();
    first.child.kill('SIGKILL');
    assert.equal(await first.done, -1);
    // Replies sent in the last second may not have reached the disk (the issue asks for "within
    // seconds"; a loaded machine takes its time): they count as in flight.
    const inFlight = slow.inFlightAt(killedAt, 1000);
    const beforeRerun = slow.requests.length;

    const second = runCli(configFile);
    assert.equal(await second.done, 0, second.stderr());
    const total = slow.requests.length;
    assert.ok(beforeRerun < cleanRequests, 'killed before annotate finished');
    assert.ok(
      total <= cleanRequests + inFlight,
      `${total} requests over kill and rerun, against ${cleanRequests} for one clean run + ${inFlight} in flight at the kill`,
    );
    const ctx = createContext(parseConfig(openaiConfig(root, input, url)));
    await resolveRun(ctx);
    assert.equal((await summarize(ctx, [])).triples, cleanTriples);
    assert.deepEqual(
      (await readLedger(ctx)).filter((f) => f.stage === 'annotate'),
      [],
    );
  } finally {
    await slow.stop();
  }
});

test('endpoint down for a while, then up: the run waits, completes, and no pair is ledgered', { timeout: 240_000 }, async () => {
  const flaky = new FakeServer({ latencyMs: 20, slots: 8 });
  const url = await flaky.start();
  try {
    const input = await sampleSlice();
    const root = tempDir('openai-down');
    const ctx = createContext(parseConfig(openaiConfig(root, input, url, { down_after_s: 120, retry_every_s: 0.5 })));
    const run = runLocal(ctx, { progress: new ProgressReporter(process.stderr, true) });
    while (flaky.requests.length < 30) await new Promise((r) => setTimeout(r, 5));
    await flaky.stop(); // requests in flight are cut, new ones refused
    const whileDown = flaky.requests.length;
    await new Promise((r) => setTimeout(r, 2000));
    assert.equal(flaky.requests.length, whileDown);
    await flaky.start(); // the same port
    await run;
    const summary = await summarize(ctx, []);
    const pairs = Object.values(summary.pairs).reduce((a, b) => a + b, 0);
    assert.deepEqual(
      (await readLedger(ctx)).filter((f) => f.stage === 'annotate'),
      [],
    );
    assert.equal(summary.triples, pairs);
    assert.ok(flaky.requests.length > whileDown, 'resumed once the endpoint answered');
  } finally {
    await flaky.stop();
  }
});

test('endpoint down past down_after_s: the unit fails and no pair is ledgered', { timeout: 120_000 }, async () => {
  const gone = new FakeServer();
  const url = await gone.start();
  await gone.stop();
  const input = await sampleSlice();
  const root = tempDir('openai-gone');
  const ctx = createContext(parseConfig(openaiConfig(root, input, url, { down_after_s: 1, retry_every_s: 0.2 })));
  await assert.rejects(
    runLocal(ctx, { progress: new ProgressReporter(process.stderr, true) }),
    /annotate part-\d+ failed: describe endpoint .* unreachable since .*ECONNREFUSED.*down_after_s/,
  );
  // The units are named as failed (retryable); no pair is.
  const entries = (await readLedger(ctx)).filter((f) => f.stage === 'annotate');
  assert.ok(entries.length > 0 && entries.every((f) => f.reason === 'unit_failed' && f.retryable), JSON.stringify(entries));
});

test('a storm of 429s with Retry-After: the whole endpoint pauses, and no pair is lost', { timeout: 240_000 }, async () => {
  const storm = new FakeServer({ latencyMs: 10, slots: 8, faults: { rate_limited: 0.25 }, retryAfterS: 1 });
  const url = await storm.start();
  try {
    const input = await sampleSlice();
    const root = tempDir('openai-429');
    const ctx = createContext(parseConfig(openaiConfig(root, input, url, { concurrency: 8 })));
    await runLocal(ctx, { progress: new ProgressReporter(process.stderr, true) });
    const summary = await summarize(ctx, []);
    const pairs = Object.values(summary.pairs).reduce((a, b) => a + b, 0);
    assert.deepEqual(
      (await readLedger(ctx)).filter((f) => f.stage === 'annotate'),
      [],
    );
    assert.equal(summary.triples, pairs);
    const limited = storm.requests.filter((r) => r.fault === 'rate_limited');
    assert.ok(limited.length > 5, `${limited.length} 429s`);
    // A 429'd request is sent again only after its Retry-After (1 s).
    const hash = (body: unknown) => createHash('sha256').update(JSON.stringify(body)).digest('hex');
    for (const r of limited) {
      const retry = storm.requests.find((q) => q.at > r.at && hash(q.body) === hash(r.body));
      assert.ok(retry, 'every 429 was retried');
      assert.ok(retry.at - r.at >= 950, `retried ${retry.at - r.at} ms after a 429 with Retry-After: 1`);
    }
    // A storm (25% of replies) pauses the whole endpoint: most 429s are followed by a quiet spell
    // of that endpoint (none of its requests arriving from 200 to 900 ms after).
    const quiet = limited.filter((r) => !storm.requests.some((q) => q.body.model === r.body.model && q.at > r.at + 200 && q.at < r.at + 900));
    assert.ok(quiet.length * 2 > limited.length, `${quiet.length} of ${limited.length} 429s followed by a pause`);
  } finally {
    await storm.stop();
  }
});
