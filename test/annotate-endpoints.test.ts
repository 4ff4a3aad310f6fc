// The openai annotator's endpoints and replies against the fault-injecting chat server: limits
// measured at the server, hung requests that hold nothing, the request cache, structured output,
// and each kind of bad reply rejected with its own reason.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import { Redis } from 'ioredis';
import sharp from 'sharp';
import { AnnotationError, newTally, type PairToAnnotate } from '../src/annotate/annotator.ts';
import { imageEncodes } from '../src/annotate/image-url.ts';
import { endpointLimit, endpointSettings } from '../src/annotate/endpoint-settings.ts';
import { OpenAIAnnotator } from '../src/annotate/openai.ts';
import { checkAnnotator } from '../src/preflight/annotator.ts';
import { RequestCache } from '../src/annotate/request-cache.ts';
import { sharedSlots } from '../src/runner/distributed/shared-limits.ts';
import { configSchema, type OpenAIAnnotatorConfig } from '../src/config/schema.ts';
import { LocalStorage } from '../src/storage/local.ts';
import { mapPool } from '../src/util/pool.ts';
import { Rng } from '../src/util/rng.ts';
import { FakeServer, GOOD_DESCRIPTION, GOOD_INSTRUCTIONS, good, isDescribe, refusal, reply, status400, USAGE, type Handler } from './chat-server.ts';
import { repoRoot, tempDir } from './helpers.ts';

function openai(extra: Record<string, unknown>): OpenAIAnnotatorConfig {
  const cfg = configSchema.parse({
    input: { path: 'x' },
    work: 'w',
    output: 'o',
    annotate: { annotator: 'openai', openai: { mllm: 'm', llm: 'l', ...extra } },
  });
  return cfg.annotate.openai!;
}

const quiet = { backoffBaseMs: 5, backoffMaxMs: 20, log: () => {} };

let n = 0;
/** A pair with its own two images (distinct bytes), so requests differ between pairs. */
async function pair(): Promise<PairToAnnotate> {
  const i = n++;
  // Colours far apart, so that no two pairs' JPEGs coincide.
  const png = (k: number) =>
    sharp({ create: { width: 16, height: 16, channels: 3, background: { r: (k * 53) % 256, g: (k * 101) % 256, b: (k * 197) % 256 } } })
      .png()
      .toBuffer();
  const [q, t] = await Promise.all([png(2 * i), png(2 * i + 1)]);
  return {
    pairId: `pair-${i}`,
    relation: 'visual_semantic',
    similarity: 0.9,
    query: { key: `q/${i}.png`, caption: 'grinning face', bytes: async () => q },
    target: { key: `t/${i}.png`, caption: 'beaming face', bytes: async () => t },
  };
}

/** Each pair its own draws: pairs with the same draws send the same instruct request (the same description). */
const seedOf = (p: PairToAnnotate) => new Rng(Number(p.pairId.slice(5)));

async function annotateAll(a: OpenAIAnnotator, count: number, inFlight = 32) {
  const pairs = await Promise.all(Array.from({ length: count }, pair));
  return mapPool(pairs, inFlight, (p) => a.annotate(p, seedOf(p)));
}

async function withServer<T>(server: FakeServer, fn: (url: string) => Promise<T>): Promise<T> {
  const url = await server.start();
  try {
    return await fn(url);
  } finally {
    await server.stop();
  }
}

/** Most requests of `model` open at once, from the server's records and answer times. */
function maxOpen(server: FakeServer, model: string, latencyMs: number): number {
  const starts = server.requests.filter((r) => r.body.model === model).map((r) => r.at);
  let most = 0;
  for (const t of starts) most = Math.max(most, starts.filter((s) => s <= t && s > t - latencyMs).length);
  return most;
}

describe('endpoints', () => {
  it('keeps each endpoint within its own concurrency and requests/s, shared by every annotator of the process', async () => {
    const describeServer = new FakeServer({ latencyMs: 60 });
    const instructServer = new FakeServer({ latencyMs: 60 });
    await withServer(describeServer, (d) =>
      withServer(instructServer, async (i) => {
        const cfg = openai({
          describe: { base_url: d, model: 'mllm', concurrency: 3 },
          instruct: { base_url: i, model: 'llm', concurrency: 6, requests_per_s: 20 },
        });
        // Two annotators, as two units would have: the limits are the process's, not each one's.
        const [a, b] = [new OpenAIAnnotator(cfg, {}, quiet), new OpenAIAnnotator(cfg, {}, quiet)];
        await Promise.all([annotateAll(a, 20), annotateAll(b, 20)]);
        assert.equal(describeServer.requests.length, 40);
        assert.equal(instructServer.requests.length, 40);
        assert.ok(describeServer.requests.every((r) => r.body.model === 'mllm'));
        assert.ok(instructServer.requests.every((r) => r.body.model === 'llm'));
        // Measured at the server: in flight never above the endpoint's concurrency ...
        assert.ok(describeServer.maxBusy <= 3 && describeServer.maxBusy >= 2, `describe: ${describeServer.maxBusy} at once`);
        assert.ok(instructServer.maxBusy <= 6, `instruct: ${instructServer.maxBusy} at once`);
        // ... and instruct's starts at most 20 a second: 40 in any 2 s, give or take the two at the
        // window's edges that the way from client to server may bring closer.
        const starts = instructServer.requests.map((r) => r.at);
        const busiest = Math.max(...starts.map((t) => starts.filter((s) => s >= t && s < t + 2000).length));
        assert.ok(busiest <= 42, `${busiest} instruct requests within 2 s`);
        assert.ok(maxOpen(describeServer, 'mllm', 60) <= 3);
      }),
    );
  });

  it('sends a copy of a hung request once it straggles, without waiting for the timeout', async () => {
    const server = new FakeServer({ latencyMs: 20 });
    await withServer(server, async (url) => {
      const a = new OpenAIAnnotator(openai({ base_url: url, concurrency: 4, timeout_ms: 60_000 }), {}, quiet);
      await annotateAll(a, 20); // the endpoints learn their latency: a straggler is one past 0.5 s
      let hung = 0;
      let closedUnanswered = 0;
      const sometimesHang: Handler = (_req, res, body) => {
        if (hung++ < 2) return res.on('close', () => closedUnanswered++);
        setTimeout(() => reply(res, body, isDescribe(body) ? GOOD_DESCRIPTION : JSON.stringify(GOOD_INSTRUCTIONS)), 20);
      };
      server.plan([], sometimesHang);
      const tally = newTally();
      const pairs = await Promise.all(Array.from({ length: 8 }, pair));
      const out = await mapPool(pairs, 8, (p) => a.annotate(p, seedOf(p), tally));
      for (const o of out) assert.deepEqual(o.instructions, GOOD_INSTRUCTIONS);
      // Each hung request got one copy, which answered; the hung one was then given up.
      assert.equal(server.requests.length, 16 + 2);
      assert.equal(tally.endpoints.describe.errors.straggler, 2);
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(closedUnanswered, 2);
    });
  });

  it('a 5xx storm opens the circuit, pairs wait instead of failing, and resume when it clears', async () => {
    const server = new FakeServer({ faults: { server_error: 1 } });
    await withServer(server, async (url) => {
      const lines: string[] = [];
      const a = new OpenAIAnnotator(openai({ base_url: url, concurrency: 2, retry_every_s: 0.2 }), {}, { ...quiet, log: (l) => lines.push(l) });
      const running = annotateAll(a, 4);
      while (!lines.length) await new Promise((r) => setTimeout(r, 5));
      assert.match(lines[0], /describe endpoint .* unreachable since \d\d:\d\d:\d\d \(HTTP 500\); retrying every 0\.2 s/);
      server.configure({});
      const out = await running;
      assert.equal(out.length, 4);
      assert.match(lines.at(-1)!, /answering again/);
    });
  });
});

describe('request cache', () => {
  it('keeps every reply on the work storage: the same requests again send nothing, from any annotator', async () => {
    const server = new FakeServer({ latencyMs: 5 });
    await withServer(server, async (url) => {
      const work = new LocalStorage(tempDir('request-cache'));
      const pairs = await Promise.all(Array.from({ length: 5 }, pair));
      const cfg = openai({ base_url: url });
      const first = await mapPool(pairs, 5, (p) => new OpenAIAnnotator(cfg, {}, { ...quiet, cache: new RequestCache(work) }).annotate(p, seedOf(p)));
      assert.equal(server.requests.length, 10);
      server.plan([]);
      const tally = newTally();
      // Another annotator, another config that sends the same requests (a changed limit).
      const again = new OpenAIAnnotator(openai({ base_url: url, concurrency: 3 }), {}, { ...quiet, cache: new RequestCache(work) });
      const second = await mapPool(pairs, 5, (p) => again.annotate(p, seedOf(p), tally));
      assert.equal(server.requests.length, 0);
      assert.deepEqual(second, first);
      assert.deepEqual(tally.endpoints.describe, { requests: 0, cached: 5, errors: {} });
      assert.deepEqual(tally.tokens, { m: { prompt: 500, completion: 50 }, l: { prompt: 500, completion: 50 } });
      const files: string[] = [];
      for await (const k of work.list('requests/')) files.push(k);
      assert.equal(files.length, 10);
      assert.ok(
        files.every((f) => /^requests\/[0-9a-f]{2}\/[0-9a-f]{64}\.json$/.test(f)),
        files[0],
      );
    });
  });

  it('encodes an image for the MLLM once per process, however many pairs it is in', async () => {
    const server = new FakeServer();
    await withServer(server, async (url) => {
      const a = new OpenAIAnnotator(openai({ base_url: url }), {}, quiet);
      const p = await pair();
      const before = imageEncodes.count;
      for (let i = 0; i < 4; i++) await a.annotate({ ...p, pairId: `again-${i}` }, new Rng(10 + i));
      assert.equal(imageEncodes.count - before, 2);
      assert.equal(server.requests.length, 8);
    });
  });
});

describe('replies', () => {
  const cases: Array<[string, Handler, string]> = [
    ['a refused description', (_q, res, body) => reply(res, body, "I'm sorry, but I can't help with identifying these images."), 'description_refusal'],
    ['a description over WORD_NUM', (_q, res, body) => reply(res, body, `${GOOD_DESCRIPTION} ${'very '.repeat(200)}`), 'description_too_long'],
    [
      'meta-talk in a description',
      (_q, res, body) => reply(res, body, `${GOOD_DESCRIPTION} I hope this helps, let me know if you need more.`),
      'description_meta_talk',
    ],
    ['a refused instruction list', (q, res, body) => (isDescribe(body) ? reply(res, body, GOOD_DESCRIPTION) : refusal(q, res, body)), 'instructions_refusal'],
    [
      'instructions naming the images',
      (_q, res, body) =>
        reply(
          res,
          body,
          isDescribe(body)
            ? GOOD_DESCRIPTION
            : JSON.stringify(['Unlike the Source Image, give it rosy cheeks.', 'The Target Image has smiling eyes.', 'Make it beam.']),
        ),
      'instructions_name_images',
    ],
    [
      'instructions copying the description',
      (_q, res, body) =>
        reply(res, body, isDescribe(body) ? GOOD_DESCRIPTION : JSON.stringify([GOOD_DESCRIPTION.slice(0, 80), 'Make it beam.', 'Give it rosy cheeks.'])),
      'instructions_copy_description',
    ],
    [
      'instructions out of length bounds',
      (_q, res, body) => reply(res, body, isDescribe(body) ? GOOD_DESCRIPTION : JSON.stringify(['Beam.', 'Make it beam.', 'Rosy.'])),
      'instructions_length',
    ],
    [
      'too few instructions',
      (_q, res, body) => reply(res, body, isDescribe(body) ? GOOD_DESCRIPTION : JSON.stringify(['Make it beam.'])),
      'instructions_too_few',
    ],
    ['no JSON list', (_q, res, body) => reply(res, body, isDescribe(body) ? GOOD_DESCRIPTION : 'make it beam, give it cheeks'), 'instructions_not_json'],
  ];
  const server = new FakeServer();
  for (const [what, handler, reason] of cases) {
    it(`rejects ${what} as ${reason}, quoting the reply`, async () => {
      await withServer(server, async (url) => {
        server.plan([], handler);
        const a = new OpenAIAnnotator(openai({ base_url: url, attempts: 2 }), {}, quiet);
        const err = await a.annotate(await pair(), new Rng(4)).then(
          () => assert.fail('accepted'),
          (e: unknown) => e,
        );
        assert.ok(err instanceof AnnotationError, String(err));
        assert.equal(err.reason, reason, err.message);
        assert.match(err.message, /reply: "/);
      });
    });
  }

  it('asks for the instruction list as structured output, and drops it for a server that refuses it', async () => {
    const server = new FakeServer();
    await withServer(server, async (url) => {
      const a = new OpenAIAnnotator(openai({ base_url: url }), {}, quiet);
      const out = await a.annotate(await pair(), new Rng(5));
      assert.deepEqual(out.instructions, GOOD_INSTRUCTIONS);
      const instruct = server.requests[1].body;
      assert.equal(instruct.response_format.type, 'json_schema');
      assert.deepEqual(instruct.response_format.json_schema.schema.properties.instructions.type, 'array');

      const refusesFormat: Handler = (q, res, body) =>
        body.response_format ? status400(q, res, body) : reply(res, body, isDescribe(body) ? GOOD_DESCRIPTION : JSON.stringify(GOOD_INSTRUCTIONS));
      server.plan([], refusesFormat);
      const b = new OpenAIAnnotator(openai({ base_url: url }), {}, quiet);
      assert.deepEqual((await b.annotate(await pair(), new Rng(5))).instructions, GOOD_INSTRUCTIONS);
      assert.deepEqual((await b.annotate(await pair(), new Rng(6))).instructions, GOOD_INSTRUCTIONS);
      // Refused once, then never asked for again by this annotator.
      assert.deepEqual(
        server.requests.map((r) => [isDescribe(r.body) ? 'describe' : 'instruct', r.body.response_format !== undefined]),
        [
          ['describe', false],
          ['instruct', true],
          ['instruct', false],
          ['describe', false],
          ['instruct', false],
        ],
      );
    });
  });
});

describe('preflight of the annotator', () => {
  const config = (openaiSection: Record<string, unknown>) =>
    configSchema.parse({ input: { path: 'x' }, work: 'w', output: 'o', annotate: { annotator: 'openai', openai: openaiSection } });

  it('passes when each endpoint serves its model, and names the key of a model it does not serve', async () => {
    const server = new FakeServer({ models: ['internvl2-26b', 'llama-3-8b'] });
    await withServer(server, async (url) => {
      assert.deepEqual(await checkAnnotator(config({ base_url: url, mllm: 'internvl2-26b', llm: 'llama-3-8b' })), []);
      const problems = await checkAnnotator(config({ base_url: url, mllm: 'internvl2-26b', instruct: { model: 'llama-3-70b' } }));
      assert.equal(problems.length, 1);
      assert.equal(problems[0].key, 'annotate.openai.instruct.model');
      assert.match(problems[0].found, /"llama-3-70b", which .* does not serve \(it lists "internvl2-26b", "llama-3-8b"\)/);
    });
  });

  it("names the base_url key of an endpoint that does not answer, in the cause's words", async () => {
    const gone = new FakeServer();
    const url = await gone.start();
    await gone.stop();
    const up = new FakeServer({ models: ['m'] });
    await withServer(up, async (upUrl) => {
      const problems = await checkAnnotator(config({ base_url: upUrl, mllm: 'm', instruct: { base_url: url } }));
      assert.equal(problems.length, 1);
      assert.equal(problems[0].key, 'annotate.openai.instruct.base_url');
      assert.match(problems[0].found, /unreachable \(ECONNREFUSED\)/);
      assert.match(problems[0].expected, /GET .*\/models/);
    });
    assert.deepEqual(await checkAnnotator(configSchema.parse({ input: { path: 'x' }, work: 'w', output: 'o' })), [], 'template: nothing to check');
  });
});

/**
 * A process of test/annotate-limit-process.ts, killed when the test ends: `go` starts it once
 * `ready` (with `wait`), `exit` is its code.
 */
function limitProcess(t: TestContext, url: string, prefix: string, first: number, count: number, opts: { extra?: object; key?: string; wait?: boolean } = {}) {
  const args = [
    '--import',
    'tsx',
    path.join(repoRoot, 'test/annotate-limit-process.ts'),
    url,
    prefix,
    String(first),
    String(count),
    JSON.stringify(opts.extra ?? {}),
  ];
  const child = spawn(process.execPath, args, {
    stdio: [opts.wait ? 'pipe' : 'ignore', opts.wait ? 'pipe' : 'inherit', 'inherit'],
    env: { ...process.env, OPENAI_API_KEY: opts.key ?? 'EMPTY', LIMIT_TEST_WAIT: opts.wait ? '1' : '' },
  });
  t.after(() => void child.kill());
  const exit = new Promise<number>((resolve) => child.on('exit', (code) => resolve(code ?? -1)));
  const ready = opts.wait
    ? new Promise<void>((resolve) => child.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && resolve()))
    : Promise.resolve();
  return { ready, exit, go: () => child.stdin?.end('go\n') };
}

/** A connection to the test Redis, whose keys under `prefix` go when the test ends. */
function testRedis(t: TestContext, prefix: string): Redis {
  const redis = new Redis({ host: '127.0.0.1', port: 6379 });
  t.after(async () => {
    const keys = await redis.keys(`${prefix}:*`);
    if (keys.length) await redis.del(...keys);
    redis.disconnect();
  });
  return redis;
}

/** Every key a run left under `prefix` expires on its own. */
async function assertKeysExpire(redis: Redis, prefix: string): Promise<void> {
  for (const k of await redis.keys(`${prefix}:*`)) assert.ok((await redis.pttl(k)) > 0, `${k} never expires`);
}

describe('limits across processes', () => {
  it('two processes sharing one endpoint stay within its concurrency and requests/s together (Redis)', { timeout: 120_000 }, async (t) => {
    const server = new FakeServer({ latencyMs: 50 });
    const prefix = `megapairs-test-limits-${process.pid}-${Date.now()}`;
    await withServer(server, async (url) => {
      const run = (first: number) => limitProcess(t, url, prefix, first, 25).exit;
      assert.deepEqual(await Promise.all([run(0), run(1000)]), [0, 0]);
    });
    await assertKeysExpire(testRedis(t, prefix), prefix);
    assert.equal(server.requests.length, 100);
    // Both processes would open 3 each; together they never hold more than 3 per model.
    assert.ok(server.maxBusyByModel.m <= 3 && server.maxBusyByModel.l <= 3, JSON.stringify(server.maxBusyByModel));
    assert.ok(server.maxBusyByModel.m >= 2, 'the slots were used');
    const starts = server.requests.filter((r) => r.body.model === 'l').map((r) => r.at);
    const busiest = Math.max(...starts.map((t) => starts.filter((s) => s >= t && s < t + 2000).length));
    assert.ok(busiest <= 22, `${busiest} instruct requests within 2 s at 10/s across both processes`);
  });

  it('two processes sharing one endpoint stay within its tokens_per_min together (Redis)', { timeout: 120_000 }, async (t) => {
    const server = new FakeServer({ latencyMs: 20 });
    const prefix = `megapairs-test-tokens-${process.pid}-${Date.now()}`;
    // 5 requests' worth a second (each reply reports USAGE), on describe only: well under what the
    // two processes send unlimited, so without the shared budget the bound below breaks at once.
    const tpm = 300 * USAGE.total_tokens;
    const extra = { concurrency: 3, describe: { tokens_per_min: tpm }, instruct: {} };
    const redis = testRedis(t, prefix);
    let t0 = 0;
    await withServer(server, async (url) => {
      const procs = [limitProcess(t, url, prefix, 0, 15, { extra, wait: true }), limitProcess(t, url, prefix, 1000, 15, { extra, wait: true })];
      await Promise.all(procs.map((p) => p.ready));
      // The shared bucket starts spent, so from t0 on only its refill can be sent: the bound below
      // then holds from the first request (a full bucket's minute of burst would take a minute to see).
      const settings = endpointSettings(openai({ base_url: url, describe: { tokens_per_min: tpm } }), 'describe');
      t0 = Date.now();
      const slot = await sharedSlots(redis, prefix, endpointLimit(settings, 30_000)).acquire();
      await slot.charge(tpm);
      slot.release();
      for (const p of procs) p.go();
      assert.deepEqual(await Promise.all(procs.map((p) => p.exit)), [0, 0]);
    });
    await assertKeysExpire(redis, prefix);
    const sent = server.requests.filter((r) => r.body.model === 'm').map((r) => r.at);
    assert.equal(sent.length, 30);
    // A request starts only while the shared balance is positive and is charged when it answers, so
    // by any time t the tokens sent are at most the refill since t0, plus the requests in flight
    // uncharged (at most the shared concurrency); one request per process more to spare.
    const slack = (3 + 2) * USAGE.total_tokens;
    for (const [i, at] of sent.entries()) {
      const tokens = (i + 1) * USAGE.total_tokens;
      const budget = ((at - t0) * tpm) / 60_000 + slack;
      assert.ok(tokens <= budget, `${tokens} tokens sent ${at - t0} ms after the bucket was spent; the budget is ${Math.floor(budget)}`);
    }
  });

  it("a 429 storm seen by one process pauses the other's requests for its Retry-After (Redis)", { timeout: 120_000 }, async (t) => {
    const server = new FakeServer({ latencyMs: 10 });
    const prefix = `megapairs-test-pause-${process.pid}-${Date.now()}`;
    // The "storm" process's first 10 describe requests get 429s: quick ones until its endpoint has
    // seen enough replies to call it a storm, then a Retry-After of 3 s, which pauses the endpoint.
    let limited = 0;
    server.plan([], (req, res, body) => {
      if (!isDescribe(body) || req.headers.authorization !== 'Bearer storm' || limited >= 10) return good(req, res, body);
      limited++;
      res.writeHead(429, { 'content-type': 'application/json', 'retry-after-ms': limited < 10 ? '20' : '3000' });
      res.end(JSON.stringify({ error: { message: 'rate limit exceeded', type: 'rate_limit_error' } }));
    });
    const redis = testRedis(t, prefix);
    let pausedUntil = 0;
    await withServer(server, async (url) => {
      const calm = limitProcess(t, url, prefix, 1000, 5, { key: 'calm', wait: true });
      await calm.ready;
      const storm = limitProcess(t, url, prefix, 0, 2, { key: 'storm' });
      // Once the pause is in Redis, the calm process starts: none of its requests may go before it ends.
      for (const deadline = Date.now() + 30_000; ; ) {
        assert.ok(Date.now() < deadline, 'no pause of the describe endpoint in Redis');
        const [key] = await redis.keys(`${prefix}:annotate:describe:*:pause`);
        const now = Date.now();
        const left = key ? await redis.pttl(key) : 0;
        if (left > 1000) {
          pausedUntil = now + left;
          break;
        }
        await new Promise((r) => setTimeout(r, 5));
      }
      calm.go();
      assert.deepEqual(await Promise.all([storm.exit, calm.exit]), [0, 0]);
    });
    await assertKeysExpire(redis, prefix);
    const calmDescribes = server.requests.filter((r) => isDescribe(r.body) && r.headers.authorization === 'Bearer calm').map((r) => r.at);
    assert.equal(calmDescribes.length, 5);
    // 50 ms for the clocks' rounding: the pause itself is kept on Redis's.
    const early = calmDescribes.filter((at) => at < pausedUntil - 50);
    assert.deepEqual(
      early.map((at) => at - pausedUntil),
      [],
      'calm requests sent before the pause ended (ms before its end)',
    );
  });
});
