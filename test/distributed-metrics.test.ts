// Metrics of a real distributed run, scraped over HTTP while it runs: a worker process and
// `megapairs run`, both with --metrics-port 0 (a free port each, printed when listening).
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { cli, firstTo, newRun, stop } from './distributed-harness.ts';
import { sampleSlice, tempDir } from './helpers.ts';

process.env.MEGAPAIRS_CACHE = tempDir('dist-metrics-cache');
let input: string;
before(async () => {
  input = await sampleSlice();
});

async function scrape(port: number): Promise<{ type: string; text: string }> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  assert.equal(res.status, 200);
  return { type: res.headers.get('content-type') ?? '', text: await res.text() };
}

/** The value of one sample, e.g. value(text, 'megapairs_units_total{stage="embed",outcome="done"}'). */
function value(text: string, sample: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(sample + ' '));
  return line === undefined ? undefined : Number(line.slice(sample.length + 1));
}

test('a worker and the follower serve Prometheus metrics during a run: units, items, latency, queue backlog, shard loads', { timeout: 300_000 }, async () => {
  const run = newRun(input, 'metrics');
  // The follower publishes the run; the worker serves it once published.
  const follower = cli(['run', '--config', run.file, '--metrics-port', '0']);
  const worker = cli(['worker', 'all', '--config', run.file, '--metrics-port', '0']);
  const workerPort = Number((await worker.waitFor(/metrics on http:\/\/127\.0\.0\.1:(\d+)\/metrics/))[1]);
  try {
    // While embedding: the follower's endpoint has every stage's backlog (the KEDA metric).
    await firstTo([worker], /start embed\.[0-9a-f]{12}\.part-00001\n/);
    const runPort = Number(/metrics on http:\/\/127\.0\.0\.1:(\d+)\/metrics/.exec(follower.err())![1]);
    const during = await scrape(runPort);
    assert.match(during.type, /^text\/plain; version=0\.0\.4/);
    assert.match(during.text, /# TYPE megapairs_queue_backlog gauge/);
    for (const stage of ['catalog', 'embed', 'index', 'search', 'mine', 'select', 'annotate', 'emit', 'jsonl']) {
      assert.notEqual(value(during.text, `megapairs_queue_backlog{run="test",stage="${stage}"}`), undefined, stage);
    }
    assert.notEqual(value(during.text, 'megapairs_queue_jobs{run="test",stage="embed",state="active"}'), undefined);
    const midWorker = await scrape(workerPort);
    assert.equal(value(midWorker.text, 'megapairs_units_total{stage="catalog",outcome="done"}'), 3);
    assert.equal(value(midWorker.text, 'megapairs_items_total{stage="catalog"}'), 150);
    assert.ok(value(midWorker.text, 'megapairs_units_total{stage="embed",outcome="done"}')! >= 1, 'one embed unit done before the second started');

    assert.equal((await follower.exited).code, 0);
    // After the run, the worker's counters cover it all, the unit threads' shard loads included.
    const end = (await scrape(workerPort)).text;
    assert.equal(value(end, 'megapairs_units_total{stage="embed",outcome="done"}'), 3);
    assert.equal(value(end, 'megapairs_unit_seconds_count{stage="mine"}'), 3);
    assert.equal(value(end, 'megapairs_items_total{stage="embed"}'), 150);
    for (const space of ['visual_semantic', 'visual_pattern', 'caption']) {
      assert.ok(value(end, `megapairs_index_shard_loads_total{space="${space}"}`)! >= 1, space);
      assert.ok(value(end, `megapairs_index_shard_bytes_read_total{space="${space}"}`)! > 0, space);
    }
    assert.equal(value(end, 'megapairs_queue_backlog{run="test",stage="mine"}'), 0);
    const notFound = await fetch(`http://127.0.0.1:${workerPort}/`);
    assert.equal(notFound.status, 404);
  } finally {
    await stop([worker, follower]);
  }
});
