// Annotation by batch (src/annotate/batch/) against the test chat server's Batch API, through the
// real `openai` SDK: replies land in the request cache as online ones do; a run killed with -9
// and run again submits nothing twice; expired and cancelled batches send only what they did not
// run; item faults come back, environment faults go again; a validation failure names its line;
// request sets split into files within the limits.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { describe, it, type TestContext } from 'node:test';
import OpenAI, { BadRequestError, toFile } from 'openai';
import sharp from 'sharp';
import type { PairToAnnotate } from '../src/annotate/annotator.ts';
import { BatchClient } from '../src/annotate/batch/client.ts';
import { runBatches, type BatchSettings, type RequestOutcome } from '../src/annotate/batch/driver.ts';
import { batchLine, DEFAULT_LIMITS, splitIntoFiles } from '../src/annotate/batch/files.ts';
import { BatchJournal } from '../src/annotate/batch/journal.ts';
import { batchRequest, type BatchRequest } from '../src/annotate/batch/request.ts';
import { BatchValidationError } from '../src/annotate/batch/validation-error.ts';
import { OpenAIAnnotator } from '../src/annotate/openai.ts';
import { RequestCache } from '../src/annotate/request-cache.ts';
import { configSchema } from '../src/config/schema.ts';
import { LocalStorage } from '../src/storage/local.ts';
import { mapPool } from '../src/util/pool.ts';
import { Rng } from '../src/util/rng.ts';
import { chatRequests } from './annotate-batch-requests.ts';
import { drop, FakeServer, good, hang, rateLimited, status400, status500, type Handler, type ServerOptions } from './chat-server.ts';
import { repoRoot, tempDir } from './helpers.ts';

// ---------------------------------------------------------------------------------------------
// Fixtures

async function startServer(t: TestContext, opts: ServerOptions = {}): Promise<FakeServer> {
  const server = new FakeServer(opts);
  await server.start();
  t.after(() => server.stop());
  return server;
}

/** A driver's parts over a fresh work folder, polling fast and quietly. */
function parts(server: FakeServer, workDir = tempDir('batch')) {
  const work = new LocalStorage(workDir);
  const cache = new RequestCache(work);
  const journal = new BatchJournal(work);
  const client = new BatchClient({ baseURL: server.url, maxRetries: 0 });
  const run = (requests: readonly BatchRequest[], settings: Partial<BatchSettings> = {}) =>
    runBatches({ requests, cache, journal, client, settings: { pollIntervalMs: 20, log: () => {}, ...settings } });
  return { work, cache, journal, client, run };
}

/** The input files the server was given, in upload order: each line's custom_id and body. */
function inputFiles(server: FakeServer) {
  return [...server.batches.files.values()]
    .filter((f) => f.obj.purpose === 'batch')
    .map((f) => ({
      id: f.obj.id,
      bytes: f.bytes.length,
      lines: f.bytes
        .toString('utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { custom_id: string; body: { model: string } }),
    }));
}

/** custom_ids the server saw submitted exactly `times` times. */
function submitted(server: FakeServer, times: number): Set<string> {
  return new Set([...server.batches.submittedByCustomId].filter(([, n]) => n === times).map(([id]) => id));
}

/** The lines a server batch answered, as custom_ids. */
function answered(server: FakeServer, batchId: string): Set<string> {
  const b = server.batches.batches.get(batchId)!;
  return new Set(b.finished.map((i) => b.lines[i].custom_id));
}

function completion(o: RequestOutcome) {
  assert.ok('completion' in o, `request ${o.custom_id} failed: ${JSON.stringify('failure' in o && o.failure)}`);
  return o;
}

/** Every file the request cache holds: hash -> its model and completion. */
async function cacheFiles(work: LocalStorage): Promise<Map<string, unknown>> {
  const found = new Map<string, unknown>();
  for await (const key of work.list('requests/')) {
    const m = /^requests\/[0-9a-f]{2}\/([0-9a-f]{64})\.json$/.exec(key);
    if (!m) continue;
    const file = JSON.parse((await work.read(key)).toString('utf8'));
    found.set(m[1], { request: file.request, model: file.model, completion: file.completion });
  }
  return found;
}

/** Resolves once `count` batches exist at the server. */
function batchesCreated(server: FakeServer, count: number): Promise<void> {
  return new Promise((resolve) => {
    const check = () => {
      if (server.batches.batchesCreated < count) return;
      server.batches.events.off('batch-created', check);
      resolve();
    };
    server.batches.events.on('batch-created', check);
    check();
  });
}

/** Resolves once every batch at the server is in `status`. */
function allBatches(server: FakeServer, status: string): Promise<void> {
  return new Promise((resolve) => {
    const check = () => {
      if (![...server.batches.batches.values()].every((b) => b.obj.status === status)) return;
      server.batches.events.off('status', check);
      resolve();
    };
    server.batches.events.on('status', check);
    check();
  });
}

/** A process of test/annotate-batch-process.ts; killed with -9 when the test ends. */
function driverProcess(t: TestContext, url: string, workDir: string, count: number, maxRequests: number) {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', path.join(repoRoot, 'test/annotate-batch-process.ts'), url, workDir, String(count), String(maxRequests)],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  t.after(() => void child.kill('SIGKILL'));
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  return {
    exit,
    kill: async () => {
      child.kill('SIGKILL');
      assert.equal((await exit).signal, 'SIGKILL');
    },
    report: async () => {
      assert.deepEqual(await exit, { code: 0, signal: null });
      return JSON.parse(out.trim().split('\n').at(-1)!) as { report: Awaited<ReturnType<typeof runBatches>>['report']; completions: number };
    },
  };
}

// ---------------------------------------------------------------------------------------------

describe('the test server speaks the Batch API (through the openai SDK)', () => {
  it('takes uploads with purpose batch only, and serves them back', async (t) => {
    const server = await startServer(t);
    const sdk = new OpenAI({ apiKey: 'EMPTY', baseURL: server.url, maxRetries: 0 });
    const content = `${chatRequests(2)
      .map((r) => batchLine(r.custom_id, r.body).text)
      .join('\n')}\n`;
    await assert.rejects(sdk.files.create({ file: await toFile(Buffer.from(content), 'in.jsonl'), purpose: 'fine-tune' }), (err: unknown) => {
      assert.ok(err instanceof BadRequestError);
      assert.match(err.message, /purpose "batch" only, not "fine-tune"/);
      return true;
    });
    const file = await sdk.files.create({ file: await toFile(Buffer.from(content), 'in.jsonl'), purpose: 'batch' });
    assert.equal(file.object, 'file');
    assert.equal(file.purpose, 'batch');
    assert.equal(file.filename, 'in.jsonl');
    assert.equal(file.bytes, Buffer.byteLength(content));
    assert.deepEqual(await sdk.files.retrieve(file.id), file);
    assert.equal(await (await sdk.files.content(file.id)).text(), content);
    assert.equal(server.batches.filesUploaded, 1);
  });

  it('lists batches newest first, page by page, and cancels one', async (t) => {
    const server = await startServer(t);
    server.batches.pause(); // nothing finishes while the test looks
    const sdk = new OpenAI({ apiKey: 'EMPTY', baseURL: server.url, maxRetries: 0 });
    const content = Buffer.from(`${batchLine(chatRequests(1)[0].custom_id, chatRequests(1)[0].body).text}\n`);
    const file = await sdk.files.create({ file: await toFile(content, 'in.jsonl'), purpose: 'batch' });
    const made: string[] = [];
    for (let i = 0; i < 3; i++) {
      const b = await sdk.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h', metadata: { n: String(i) } });
      assert.equal(b.status, 'validating');
      assert.deepEqual(b.metadata, { n: String(i) });
      made.push(b.id);
    }
    const page = await sdk.batches.list({ limit: 2 });
    assert.deepEqual(
      page.data.map((b) => b.id),
      [made[2], made[1]],
    );
    assert.ok(page.hasNextPage());
    const all: string[] = [];
    for await (const b of sdk.batches.list({ limit: 2 })) all.push(b.id);
    assert.deepEqual(all, [...made].reverse());
    const cancelling = await sdk.batches.cancel(made[0]);
    assert.equal(cancelling.status, 'cancelling');
    let b = await sdk.batches.retrieve(made[0]);
    while (b.status !== 'cancelled') b = await new Promise((r) => setTimeout(r, 10)).then(() => sdk.batches.retrieve(made[0]));
    assert.ok(b.cancelling_at && b.cancelled_at);
    await assert.rejects(sdk.batches.create({ input_file_id: 'file-nope', endpoint: '/v1/chat/completions', completion_window: '24h' }), /No such File object/);
    assert.equal(server.batches.batchesCreated, 3);
  });

  it('fails validation of a malformed line and of a file over its limits, naming the line', async (t) => {
    const server = await startServer(t);
    const sdk = new OpenAI({ apiKey: 'EMPTY', baseURL: server.url, maxRetries: 0 });
    const lines = chatRequests(3).map((r) => batchLine(r.custom_id, r.body).text);
    const failed = async (text: string) => {
      const file = await sdk.files.create({ file: await toFile(Buffer.from(text), 'in.jsonl'), purpose: 'batch' });
      let b = await sdk.batches.create({ input_file_id: file.id, endpoint: '/v1/chat/completions', completion_window: '24h' });
      while (b.status === 'validating') b = await new Promise((r) => setTimeout(r, 10)).then(() => sdk.batches.retrieve(b.id));
      assert.equal(b.status, 'failed');
      assert.ok(b.failed_at);
      return b.errors!.data!;
    };
    const malformed = await failed(`${lines[0]}\n${lines[1].slice(0, 40)}\n${lines[2]}\n`);
    assert.deepEqual(
      malformed.map((e) => [e.code, e.line]),
      [['invalid_json_line', 2]],
    );
    server.configure({ batch: { maxRequests: 2 } });
    const over = await failed(`${lines.join('\n')}\n`);
    assert.deepEqual(
      over.map((e) => [e.code, e.line]),
      [['too_many_requests', 3]],
    );
  });
});

describe('batch driver', () => {
  it('puts every reply in the request cache as the online path keeps it: an annotator then sends nothing', async (t) => {
    const server = await startServer(t);
    const cfg = configSchema.parse({
      input: { path: 'x' },
      work: 'w',
      output: 'o',
      annotate: { annotator: 'openai', openai: { base_url: server.url, mllm: 'm', llm: 'l' } },
    }).annotate.openai!;
    const quiet = { backoffBaseMs: 5, backoffMaxMs: 20, log: () => {} };
    const png = (k: number) =>
      sharp({ create: { width: 16, height: 16, channels: 3, background: { r: k * 40, g: 255 - k * 30, b: k * 7 } } })
        .png()
        .toBuffer();
    const pairs: PairToAnnotate[] = await Promise.all(
      [0, 1, 2].map(async (i) => {
        const [q, tg] = await Promise.all([png(2 * i), png(2 * i + 1)]);
        return {
          pairId: `pair-${i}`,
          relation: 'visual_semantic' as const,
          similarity: 0.9,
          query: { key: `q/${i}.png`, caption: 'grinning face', bytes: async () => q },
          target: { key: `t/${i}.png`, caption: 'beaming face', bytes: async () => tg },
        };
      }),
    );
    // Online, into one work storage: what the annotator sends, and what it keeps.
    const online = new LocalStorage(tempDir('batch-online'));
    const annotate = (work: LocalStorage) =>
      mapPool(pairs, 3, (p, i) => new OpenAIAnnotator(cfg, {}, { ...quiet, cache: new RequestCache(work) }).annotate(p, new Rng(i)));
    const first = await annotate(online);
    const bodies = server.requests.map((r) => r.body);
    assert.equal(bodies.length, 6);
    server.plan([]);

    // The same requests by batch, into another.
    const { work, run } = parts(server);
    const requests = bodies.map(batchRequest);
    const { outcomes, report } = await run(requests);
    assert.ok(outcomes.every((o) => completion(o).from === 'batch'));
    assert.deepEqual(await cacheFiles(work), await cacheFiles(online), 'the same replies under the same hashes');
    // The bodies went byte for byte: the server's hash of each submitted body is its custom_id.
    for (const r of requests) assert.equal(server.batches.submittedByBody.get(r.custom_id), 1);
    // Two models, two files: a batch takes one model.
    assert.deepEqual(
      inputFiles(server).map((f) => [...new Set(f.lines.map((l) => l.body.model))]),
      [['m'], ['l']],
    );
    assert.deepEqual([report.totals.submitted, report.totals.batches, report.totals.files_uploaded, report.totals.completed], [6, 2, 2, 6]);
    assert.deepEqual(
      report.batches[0].transitions.map((tr) => tr.status),
      ['uploaded', 'validating', 'in_progress', 'finalizing', 'completed'],
    );
    assert.deepEqual(report.batches[0].request_counts, { total: 3, completed: 3, failed: 0 });

    // The online path reads the batch's replies: nothing is sent, the annotations are the same.
    server.plan([], status500);
    assert.deepEqual(await annotate(work), first);
    assert.equal(server.requests.length, 0);
    // And the driver again: everything from the cache, nothing submitted.
    const again = await run(requests);
    assert.ok(again.outcomes.every((o) => completion(o).from === 'cache'));
    assert.equal(server.batches.batchesCreated, 2);
  });

  it('never puts a cached request in a file, and splits 20,000 requests into files within small limits', { timeout: 300_000 }, async (t) => {
    const server = await startServer(t, { batch: { concurrency: 16, validatingMs: 5, inProgressMs: 5, finalizingMs: 5 } });
    const { cache, run } = parts(server);
    // Two models; short lines first (files end at 800 requests), then longer ones (files end at 256 KiB).
    const requests = chatRequests(20_000, { models: ['m', 'l'], pad: (i) => (i < 8000 ? 0 : (i * 7) % 40) });
    const cached = requests.filter((_, i) => i % 10 === 3);
    for (const r of cached)
      await cache.put(r.custom_id, r.body.model, { content: `kept ${r.custom_id}`, finish_reason: 'stop', prompt_tokens: 1, completion_tokens: 1 });
    const limits = { maxRequests: 800, maxBytes: 256 * 1024 };
    const t0 = Date.now();
    const { outcomes, report } = await run(requests, { limits });
    const wallMs = Date.now() - t0;

    const cachedIds = new Set(cached.map((r) => r.custom_id));
    for (const o of outcomes) {
      const c = completion(o);
      if (cachedIds.has(o.custom_id)) assert.deepEqual([c.from, c.completion.content], ['cache', `kept ${o.custom_id}`]);
      else assert.equal(c.from, 'batch');
    }
    const files = inputFiles(server);
    const lines = files.flatMap((f) => f.lines.map((l) => l.custom_id));
    assert.equal(lines.length, 18_000);
    assert.equal(new Set(lines).size, 18_000, 'no request in two files');
    assert.ok(!lines.some((id) => cachedIds.has(id)), 'no cached request in a file');
    const endedBy = { requests: 0, bytes: 0 };
    const next = new Map<string, number>(); // per model: where its next file starts, in request order
    const byModel = (m: string) => requests.filter((r) => r.body.model === m && !cachedIds.has(r.custom_id));
    for (const f of files) {
      assert.ok(f.lines.length <= limits.maxRequests && f.bytes <= limits.maxBytes, `${f.id}: ${f.lines.length} lines, ${f.bytes} bytes`);
      const model = f.lines[0].body.model;
      assert.ok(
        f.lines.every((l) => l.body.model === model),
        `${f.id} holds one model`,
      );
      // Files are full: the request after each would have passed a limit.
      const order = byModel(model);
      const start = next.get(model) ?? 0;
      assert.deepEqual(
        f.lines.map((l) => l.custom_id),
        order.slice(start, start + f.lines.length).map((r) => r.custom_id),
      );
      next.set(model, start + f.lines.length);
      const following = order[start + f.lines.length];
      if (following) {
        const more = batchLine(following.custom_id, following.body).bytes;
        if (f.lines.length === limits.maxRequests) endedBy.requests++;
        else {
          assert.ok(f.bytes + more > limits.maxBytes, `${f.id} could have taken one more request`);
          endedBy.bytes++;
        }
      }
    }
    assert.ok(endedBy.requests > 0 && endedBy.bytes > 0, JSON.stringify(endedBy));
    assert.equal(submitted(server, 1).size, 18_000);
    assert.deepEqual(
      [report.totals.cached, report.totals.submitted, report.totals.completed, report.totals.files_uploaded, report.totals.batches],
      [2_000, 18_000, 18_000, files.length, files.length],
    );
    t.diagnostic(
      `20,000 requests (2,000 cached) in ${files.length} files (${endedBy.requests} ended by the request limit, ${endedBy.bytes} by bytes), ${report.totals.batches} batches, ${wallMs} ms`,
    );
  });

  it('survives kill -9 while creating and while batches run: the rerun submits nothing twice', { timeout: 120_000 }, async (t) => {
    // Every batch is held in_progress until the last run starts; the first create's reply never comes.
    const server = await startServer(t, { batch: { validatingMs: 20 } });
    server.batches.pause();
    server.batches.plan([{ createReplyDelayMs: 600_000 }]);
    const workDir = tempDir('batch-kill');
    const work = new LocalStorage(workDir);
    const journal = new BatchJournal(work);
    const t0 = Date.now();

    // Run 1: killed once the server has made its first batch, before the reply reaches it.
    const run1 = driverProcess(t, server.url, workDir, 300, 100);
    await batchesCreated(server, 1);
    await run1.kill();
    const [intent] = await journal.open(server.url);
    assert.equal(intent.batch_id, undefined, 'the file is recorded, its batch not yet');
    assert.equal(intent.requests, 100);

    // Run 2: finds that batch by listing, submits the other two files, killed while all three run.
    const run2 = driverProcess(t, server.url, workDir, 300, 100);
    await batchesCreated(server, 3);
    await allBatches(server, 'in_progress');
    await run2.kill();
    assert.equal(server.batches.linesAnswered, 0);

    // Run 3: adopts all three and waits for them.
    server.batches.resume();
    const { report, completions } = await driverProcess(t, server.url, workDir, 300, 100).report();
    const wallMs = Date.now() - t0;
    assert.equal(completions, 300);
    assert.deepEqual([report.totals.adopted, report.totals.submitted, report.totals.files_uploaded, report.totals.batches], [300, 0, 0, 3]);
    assert.ok(report.batches.every((b) => b.adopted && b.status === 'completed'));
    // At the server: three files, three batches, each request submitted and answered once.
    assert.deepEqual([server.batches.filesUploaded, server.batches.batchesCreated, server.batches.linesAnswered], [3, 3, 300]);
    assert.equal(submitted(server, 1).size, 300);
    assert.equal(server.batches.submittedTwice, 0);
    assert.ok([...server.batches.submittedByBody.values()].every((n) => n === 1));
    assert.equal((await cacheFiles(work)).size, 300);
    assert.deepEqual(await journal.open(server.url), [], 'every record collected');
    t.diagnostic(`300 requests, 3 batches, two kills: ${wallMs} ms from the first start to the last report`);
  });

  it("survives kill -9 at moments the server's events pick (uploads, creates, states, lines): nothing is submitted twice", { timeout: 300_000 }, async (t) => {
    const server = await startServer(t, { batch: { validatingMs: 30, inProgressMs: 150, finalizingMs: 30, concurrency: 4 } });
    const workDir = tempDir('batch-chaos');
    const rng = new Rng(Number(process.env.BATCH_CHAOS_SEED ?? 23)); // another seed: other moments
    // A kind of event, then how many more of it: kills fall after an upload, a create, a change of state, a line.
    const kinds = { file: 2, 'batch-created': 2, status: 6, line: 80 };
    const counts = new Map<string, number>();
    const seen = new Map<string, number>();
    let after: { kind: string; at: number; resolve: () => void } | undefined;
    for (const kind of Object.keys(kinds)) {
      server.batches.events.on(kind, () => {
        counts.set(kind, (counts.get(kind) ?? 0) + 1);
        if (after?.kind === kind && counts.get(kind)! >= after.at) {
          seen.set(kind, (seen.get(kind) ?? 0) + 1);
          after.resolve();
          after = undefined;
        }
      });
    }
    let kills = 0;
    for (;;) {
      const run = driverProcess(t, server.url, workDir, 600, 100);
      if (kills === 8) {
        const { report, completions } = await run.report();
        assert.equal(completions, 600);
        assert.equal(report.totals.cached + report.totals.adopted + report.totals.submitted - report.totals.resubmitted, 600);
        break;
      }
      // Killed at the picked event, unless it finishes first.
      const [kind, most] = Object.entries(kinds)[rng.int(0, 3)];
      const moment = new Promise<void>((resolve) => (after = { kind, at: (counts.get(kind) ?? 0) + rng.int(1, most), resolve }));
      if ((await Promise.race([moment.then(() => 'kill'), run.exit.then(() => 'done')])) === 'done') {
        after = undefined;
        await run.report();
        break;
      }
      await run.kill();
      kills++;
    }
    assert.equal(server.batches.submittedTwice, 0, 'no request submitted twice');
    assert.equal(submitted(server, 1).size, 600);
    assert.equal(server.batches.linesAnswered, 600);
    assert.ok(server.batches.batchesCreated <= server.batches.filesUploaded);
    const work = new LocalStorage(workDir);
    assert.equal((await cacheFiles(work)).size, 600);
    assert.deepEqual(await new BatchJournal(work).open(server.url), []);
    t.diagnostic(
      `${kills} kills (at ${[...seen].map(([k, n]) => `${n} ${k}`).join(', ')}): ${server.batches.filesUploaded} files uploaded, ${server.batches.batchesCreated} batches`,
    );
  });

  it('reads back a batch that ended while no run knew its id (its create reply lost to a kill)', { timeout: 60_000 }, async (t) => {
    const server = await startServer(t);
    server.batches.plan([{ createReplyDelayMs: 600_000 }]);
    const workDir = tempDir('batch-lost-reply');
    const first = driverProcess(t, server.url, workDir, 50, 100);
    await batchesCreated(server, 1);
    await first.kill();
    await allBatches(server, 'completed');
    // The rerun finds it by listing, ended, and reads its output: nothing is sent again.
    const { outcomes, report } = await parts(server, workDir).run(chatRequests(50));
    assert.ok(outcomes.every((o) => completion(o).from === 'batch'));
    assert.deepEqual([report.totals.adopted, report.totals.submitted, server.batches.batchesCreated, server.batches.submittedTwice], [50, 0, 1, 0]);
    assert.deepEqual(
      report.batches[0].transitions.map((tr) => tr.status),
      ['uploaded', 'validating', 'in_progress', 'finalizing', 'completed'],
    );
  });

  it("reads back another run's ended batch that holds none of its requests: every paid reply kept", { timeout: 60_000 }, async (t) => {
    const server = await startServer(t);
    server.batches.pause();
    const workDir = tempDir('batch-sweep');
    const { journal, work, run } = parts(server, workDir);
    // Killed once its batch is recorded: the batch runs on, with no run waiting for it.
    const killed = driverProcess(t, server.url, workDir, 50, 100);
    while (!(await journal.open(server.url))[0]?.batch_id) await new Promise((r) => setTimeout(r, 20));
    await killed.kill();
    server.batches.resume();
    await allBatches(server, 'completed');
    const { report } = await run(chatRequests(10, { first: 1000 }));
    assert.deepEqual([report.totals.swept, report.totals.adopted, report.totals.submitted], [1, 0, 10]);
    assert.equal((await cacheFiles(work)).size, 60, "the killed run's 50 replies and this run's 10");
    assert.deepEqual(await journal.open(server.url), []);
  });

  it('sends again only what an expired batch did not run', async (t) => {
    const server = await startServer(t);
    server.batches.plan([{ holdAfterLines: 4, expireAfterMs: 50 }]);
    const { run } = parts(server);
    const requests = chatRequests(10);
    const { outcomes, report } = await run(requests);
    assert.deepEqual(
      report.batches.map((b) => [b.status, b.ours]),
      [
        ['expired', 10],
        ['completed', 6],
      ],
    );
    assert.ok(report.batches[0].transitions.some((tr) => tr.status === 'expired'));
    const ran = answered(server, report.batches[0].batch_id!);
    assert.equal(ran.size, 4);
    assert.deepEqual(submitted(server, 1), ran);
    assert.equal(submitted(server, 2).size, 6);
    assert.deepEqual(new Set(inputFiles(server)[1].lines.map((l) => l.custom_id)), submitted(server, 2));
    for (const o of outcomes) assert.equal(completion(o).attempts, ran.has(o.custom_id) ? 1 : 2);
    assert.deepEqual([report.totals.submitted, report.totals.resubmitted], [16, 6]);
  });

  it('sends again only what a cancelled batch did not run', async (t) => {
    const server = await startServer(t);
    server.batches.plan([{ holdAfterLines: 4 }]);
    const { client, run } = parts(server);
    let lines = 0;
    server.batches.events.on('line', (b: { id: string }) => {
      if (b.id === [...server.batches.batches.keys()][0] && ++lines === 4) void client.cancel(b.id);
    });
    const { outcomes, report } = await run(chatRequests(10));
    assert.deepEqual(
      report.batches.map((b) => [b.status, b.ours]),
      [
        ['cancelled', 10],
        ['completed', 6],
      ],
    );
    assert.deepEqual(report.batches[0].transitions.map((tr) => tr.status).slice(-2), ['cancelling', 'cancelled']);
    const ran = answered(server, report.batches[0].batch_id!);
    assert.deepEqual(submitted(server, 1), ran);
    assert.equal(submitted(server, 2).size, 6);
    assert.ok(outcomes.every((o) => completion(o)));
  });

  it("returns the items' own faults and sends the environment's again in a follow-up batch", async (t) => {
    const server = await startServer(t);
    // One line at a time, so line n meets handler n; non-200 lines go to both files in turn.
    // A hung line is given up after lineTimeoutMs.
    server.batches.plan([{ concurrency: 1, nonOkTo: 'alternate', lineTimeoutMs: 200 }, { concurrency: 1 }]);
    server.plan([good, status400, status500, rateLimited(0), good, drop, status400, good, hang]);
    const { cache, run } = parts(server);
    const requests = chatRequests(9);
    const { outcomes, report } = await run(requests);

    const [first] = [...server.batches.batches.values()];
    const place = (fileId: string | null) =>
      fileId
        ? server.batches.files
            .get(fileId)!
            .bytes.toString()
            .split('\n')
            .filter(Boolean)
            .map((l) => JSON.parse(l))
        : [];
    const output = place(first.obj.output_file_id);
    const errors = place(first.obj.error_file_id);
    assert.ok(
      output.some((l) => l.response.status_code !== 200),
      'a non-200 line in the output file',
    );
    assert.ok(
      errors.some((l) => l.response?.status_code >= 400),
      'a non-200 line in the error file',
    );
    assert.ok(
      errors.some((l) => l.response === null && l.error.code === 'server_error'),
      'a dropped request in the error file',
    );
    assert.ok(
      errors.some((l) => l.response === null && l.error.code === 'timeout'),
      'a hung request in the error file',
    );

    const item = [1, 6];
    const environment = [2, 3, 5, 8];
    for (const [i, o] of outcomes.entries()) {
      if (item.includes(i)) {
        assert.ok('failure' in o);
        assert.deepEqual([o.failure.owner, o.failure.reason, o.failure.status, o.attempts], ['item', 'http_error', 400, 1]);
        assert.match(o.failure.detail, /HTTP 400: "prompt too long"/);
        assert.equal(await cache.get(o.custom_id), undefined);
      } else assert.equal(completion(o).attempts, environment.includes(i) ? 2 : 1);
    }
    // The follow-up held exactly the environment's faults.
    assert.deepEqual(new Set(inputFiles(server)[1].lines.map((l) => l.custom_id)), new Set(environment.map((i) => requests[i].custom_id)));
    assert.deepEqual([report.totals.completed, report.totals.item_failures, report.totals.environment_failures, report.batches.length], [7, 2, 0, 2]);
    assert.deepEqual(report.batches[0].request_counts, { total: 9, completed: 3, failed: 6 });
  });

  it("reports the environment's faults once their attempts are spent; a refused endpoint is not tried again", async (t) => {
    const server = await startServer(t);
    server.batches.configure({ concurrency: 1 });
    const notFound: Handler = (_req, res) => {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { message: 'The model `l` does not exist.', type: 'invalid_request_error' } }));
    };
    server.plan([notFound], status500);
    const { cache, run } = parts(server);
    const { outcomes, report } = await run(chatRequests(3), { maxAttempts: 2 });
    const failures = outcomes.map((o) => {
      assert.ok('failure' in o);
      return [o.failure.owner, o.failure.kind, o.attempts];
    });
    assert.deepEqual(failures, [
      ['environment', 'endpoint_refused', 1],
      ['environment', 'server_error', 2],
      ['environment', 'server_error', 2],
    ]);
    assert.equal(report.totals.environment_failures, 3);
    assert.equal(server.batches.batchesCreated, 2);
    for (const o of outcomes) assert.equal(await cache.get(o.custom_id), undefined);
  });

  it('gives up on a server down past downAfterMs, and the rerun adopts its batch', async (t) => {
    const server = await startServer(t);
    server.batches.pause();
    const { journal, run } = parts(server);
    const requests = chatRequests(4);
    const running = run(requests, { downAfterMs: 200 });
    await batchesCreated(server, 1);
    await allBatches(server, 'in_progress');
    await server.stop();
    await assert.rejects(running, /polling batch batch_\d+: still failing after \d+ tries in \d+ s: .*ECONNREFUSED/);
    const [open] = await journal.open(server.url);
    assert.ok(open.batch_id && !open.collected_at, 'the batch stays recorded, not collected');

    await server.start();
    server.batches.resume();
    const { outcomes, report } = await run(requests);
    assert.ok(outcomes.every((o) => completion(o)));
    assert.deepEqual([report.totals.adopted, report.totals.submitted, server.batches.batchesCreated, server.batches.submittedTwice], [4, 0, 1, 0]);
  });

  it('sends in a new file the requests of a recorded file the server no longer has', async (t) => {
    const server = await startServer(t);
    const { journal, run } = parts(server);
    const requests = chatRequests(4);
    // As a run killed after recording its upload leaves it, weeks before the file expired.
    const at = new Date().toISOString();
    await journal.recordUpload(
      {
        file_id: 'file-gone',
        endpoint: server.url,
        model: 'l',
        requests: 4,
        bytes: 1,
        file_created_at: 0,
        status: 'uploaded',
        transitions: [{ status: 'uploaded', at, seen: at }],
      },
      requests.map((r) => r.custom_id),
    );
    const { outcomes, report } = await run(requests);
    assert.ok(outcomes.every((o) => completion(o).attempts === 1));
    assert.deepEqual([report.totals.adopted, report.totals.submitted, server.batches.batchesCreated], [0, 4, 1]);
    const gone = (await journal.all()).find((r) => r.file_id === 'file-gone')!;
    assert.match(gone.abandoned!, /No such File object: file-gone/);
    assert.ok(gone.collected_at);
    assert.deepEqual(await journal.open(server.url), []);
  });

  it('sends again the requests of a batch the server no longer knows, or whose output file is gone', async (t) => {
    const server = await startServer(t);
    server.batches.pause();
    const { journal, run } = parts(server);
    const running = run(chatRequests(4));
    await batchesCreated(server, 1);
    const [lost] = server.batches.batches.keys();
    server.batches.batches.delete(lost);
    server.batches.resume();
    const { outcomes, report } = await running;
    assert.ok(outcomes.every((o) => completion(o).attempts === 2));
    assert.deepEqual([report.totals.submitted, report.totals.resubmitted, report.batches.length], [8, 4, 2]);
    const record = (await journal.all()).find((r) => r.batch_id === lost)!;
    assert.match(record.abandoned!, /No such Batch object/);

    // A batch that completed, its output file deleted before it is read (providers keep them a while).
    const other = await startServer(t);
    other.batches.events.on('status', (b: { id: string; status: string; output_file_id: string }) => {
      if (b.status === 'completed' && b.id === [...other.batches.batches.keys()][0]) other.batches.files.delete(b.output_file_id);
    });
    const second = await parts(other).run(chatRequests(4));
    assert.ok(second.outcomes.every((o) => completion(o).attempts === 2));
    assert.deepEqual(
      second.report.batches.map((b) => b.status),
      ['completed', 'completed'],
    );
  });

  it('stops on a validation failure, naming the file, the line and its request', async (t) => {
    const server = await startServer(t);
    const { journal, run } = parts(server);
    const requests = chatRequests(5);
    // A body the server cannot take as a chat request: no messages.
    const bad = batchRequest({ model: 'l', prompt: 'no messages here' } as never);
    const withBad = [...requests.slice(0, 2), bad, ...requests.slice(2)];
    await assert.rejects(run(withBad), (err: unknown) => {
      assert.ok(err instanceof BatchValidationError, String(err));
      assert.match(err.message, new RegExp(`input file file-\\d+ .*line 3 \\(request ${bad.custom_id}\\): .*a list of messages.* \\[invalid_request\\]`));
      return true;
    });
    assert.deepEqual(await journal.open(server.url), [], 'the failed batch is closed: a rerun sends its requests again');

    // A file over the server's limits: the line past it is named.
    server.configure({ batch: { maxRequests: 3 } });
    await assert.rejects(
      run(chatRequests(5, { first: 100 }), { limits: { maxRequests: 10, maxBytes: 1e6 } }),
      /line 4 \(request [0-9a-f]{64}\): "a batch input file holds at most 3 requests.*\[too_many_requests\]/,
    );
  });

  it("names the first 10 of a validation failure's errors; the journal keeps them all", async (t) => {
    const server = await startServer(t);
    const { journal, run } = parts(server);
    const bad = Array.from({ length: 15 }, (_, i) => batchRequest({ model: 'l', prompt: `no messages ${i}` } as never));
    await assert.rejects(run(bad), (err: unknown) => {
      assert.ok(err instanceof BatchValidationError, String(err));
      assert.equal(err.message.match(/\[invalid_request\]/g)?.length, 10);
      assert.match(err.message, /line 10 .*; 5 more in the journal$/);
      return true;
    });
    const [record] = await journal.all();
    assert.equal(record.errors?.length, 15);
  });

  it('reads a closed record once per process: later rounds list it and skip it', async (t) => {
    const server = await startServer(t);
    const { work, journal, run } = parts(server);
    await run(chatRequests(3));
    const keys: string[] = [];
    for await (const key of work.list('requests/batches/')) if (/^requests\/batches\/[\w-]+\.json$/.test(key)) keys.push(key);
    assert.equal(keys.length, 1);
    // Were it read again, the next round of this process would stop on it; another process does.
    for (const key of keys) await work.write(key, 'not a record');
    assert.deepEqual(await journal.open(server.url), []);
    await assert.rejects(new BatchJournal(work).open(server.url), /is not JSON/);
  });

  it("refuses a journal record whose file id is not its key's: its saves would land elsewhere", async (t) => {
    const server = await startServer(t);
    const { work, run } = parts(server);
    const record = {
      file_id: '../../elsewhere',
      endpoint: server.url,
      model: 'm',
      requests: 1,
      bytes: 1,
      file_created_at: 0,
      status: 'uploaded',
      transitions: [],
    };
    await work.write('requests/batches/file-abc.json', JSON.stringify(record));
    await assert.rejects(run(chatRequests(1)), /requests\/batches\/file-abc\.json is the record of another file \(file_id "\.\.\/\.\.\/elsewhere"\)/);
    assert.equal(server.batches.filesUploaded, 0, 'nothing submitted');
  });

  it('splits at the default limits: 50,000 requests and 200 MiB a file', () => {
    const tiny = Array.from({ length: 50_001 }, (_, i) => batchLine(`id${i}`, { model: 'm' }));
    assert.deepEqual(
      splitIntoFiles(tiny).map((f) => f.lines.length),
      [50_000, 1],
    );
    assert.deepEqual(
      splitIntoFiles(tiny.slice(0, 50_000)).map((f) => f.lines.length),
      [50_000],
    );
    // 201 requests of about 1 MiB each: just over 200 MiB in all.
    const mib = 'x'.repeat(1024 * 1024 - 100);
    const big = Array.from({ length: 201 }, (_, i) => batchLine(`id${i}`, { model: 'm', messages: [{ role: 'user', content: mib }] } as never));
    const files = splitIntoFiles(big);
    assert.equal(files.length, 2);
    assert.ok(files[0].bytes <= DEFAULT_LIMITS.maxBytes && files[0].bytes + files[1].lines[0].bytes > DEFAULT_LIMITS.maxBytes);
    assert.equal(files[0].lines.length + files[1].lines.length, 201);
    // A request larger than a file is refused by name, never cut.
    assert.throws(
      () => splitIntoFiles(big.slice(0, 1), { maxRequests: 10, maxBytes: 1000 }),
      /request id0 is \d+ bytes as a batch line, over the 1000-byte limit/,
    );
  });
});
