// The distributed runner against a real Redis: worker processes spawned as a user would start
// them (`megapairs worker all`), runs followed by `megapairs run`, SIGTERM, kill -9, a restart
// after a crash, and a unit that keeps failing. Each test has its own key prefix, removed after.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { Redis } from 'ioredis';
import { parseConfig } from '../src/config/load.ts';
import { BUILTIN_IMAGE_PREPROCESS, ensureBuiltinModels } from '../src/encoders/builtin.ts';
import { readLedger } from '../src/ledger/ledger.ts';
import { createContext } from '../src/runner/context.ts';
import { describeRedis, redisOptions } from '../src/runner/distributed/connection.ts';
import { runDistributed, RunFailedError } from '../src/runner/distributed/follow.ts';
import { queuesOfKind } from '../src/runner/distributed/kinds.ts';
import { retryFailed, runStatus } from '../src/runner/distributed/status.ts';
import { startWorker } from '../src/runner/distributed/worker.ts';
import { runLocal } from '../src/runner/local.ts';
import { ProgressReporter } from '../src/runner/progress.ts';
import { demoConfig, demoConfigObject, repoRoot, sampleSlice, tempDir, writeConfigFile } from './helpers.ts';

const cacheDir = tempDir('dist-cache');
process.env.MEGAPAIRS_CACHE = cacheDir; // built-in models made once for every process here
let input: string;
let reference: string;
const prefixes: string[] = [];
const spawned: ChildProcess[] = [];

before(async () => {
  input = await sampleSlice();
  const root = tempDir('dist-ref');
  await runLocal(createContext(demoConfig(input, root)), { progress: new ProgressReporter(process.stderr, true) });
  reference = readFileSync(path.join(root, 'output', 'megapairs.jsonl'), 'utf8');
});

after(async () => {
  for (const c of spawned) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL'); // left by a failed test
  const redis = new Redis({ host: '127.0.0.1', port: 6379, maxRetriesPerRequest: null });
  for (const prefix of prefixes) {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      if (keys.length) await redis.unlink(...keys);
      cursor = next;
    } while (cursor !== '0');
  }
  await redis.quit();
});

/** A fresh run folder and config: a queue prefix of its own, short locks so stalls recover fast. */
function newRun(name: string, extra: Record<string, unknown> = {}) {
  const root = tempDir(`dist-${name}`);
  const prefix = `mptest-${name}-${process.pid}-${Date.now()}`;
  prefixes.push(prefix);
  const obj = demoConfigObject(input, root, {
    runner: { kind: 'distributed', concurrency: 1, lock_ms: 2000, backoff_ms: 100 },
    redis: { prefix },
    ...extra,
  });
  return { root, prefix, obj, file: writeConfigFile(root, obj), jsonl: () => readFileSync(path.join(root, 'output', 'megapairs.jsonl'), 'utf8') };
}

interface Proc {
  child: ChildProcess;
  out: () => string;
  /** Resolves with the first stdout match (after `from` characters), e.g. a unit starting. */
  waitFor(re: RegExp, from?: number): Promise<RegExpMatchArray>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function cli(args: string[]): Proc {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'src/cli/main.ts'), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  spawned.push(child);
  let out = '';
  let err = '';
  const waiters: Array<{ re: RegExp; from: number; resolve: (m: RegExpMatchArray) => void }> = [];
  const check = () => {
    for (const w of waiters.splice(0)) {
      const m = out.slice(w.from).match(w.re);
      if (m) w.resolve(m);
      else waiters.push(w);
    }
  };
  child.stdout!.on('data', (d) => ((out += d), check()));
  child.stderr!.on('data', (d) => (err += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  void exited.then(({ code }) => code && console.error(`${args.join(' ')} exited ${code}:\n${out}\n${err}`));
  return {
    child,
    out: () => out,
    waitFor: (re, from = 0) =>
      new Promise((resolve, reject) => {
        waiters.push({ re, from, resolve });
        check();
        void exited.then(() => setTimeout(() => reject(new Error(`exited before ${re}:\n${out}\n${err}`)), 100));
      }),
    exited,
  };
}

async function workers(file: string, n: number, grace = 10): Promise<Proc[]> {
  const ws = Array.from({ length: n }, () => cli(['worker', 'all', '--config', file, '--grace', String(grace)]));
  await Promise.all(ws.map((w) => w.waitFor(/ready: /)));
  return ws;
}

async function stop(ws: Proc[]): Promise<void> {
  for (const w of ws) if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGTERM');
  await Promise.all(ws.map((w) => w.exited));
}

test('config: Redis URL, password and TLS; the password is never in what is printed', () => {
  const env = { REDIS_URL: 'rediss://cache.example:6380/2', SECRET_PW: 's3cr3t' };
  const c = parseConfig({ input: { path: 'x' }, work: 'w', output: 'o', redis: { password_env: 'SECRET_PW' } });
  const o = redisOptions(c, env);
  assert.deepEqual([o.host, o.port, o.db, o.password, Boolean(o.tls)], ['cache.example', 6380, 2, 's3cr3t', true]);
  assert.equal(describeRedis(c, env), 'rediss://cache.example:6380/2 (with password)');
  assert.ok(!describeRedis(parseConfig({ input: { path: 'x' }, work: 'w', output: 'o', redis: { url: 'redis://:hunter2@h:1' } }), {}).includes('hunter2'));
  assert.equal(redisOptions(parseConfig({ input: { path: 'x' }, work: 'w', output: 'o' }), {}).host, '127.0.0.1');
  assert.deepEqual(queuesOfKind('gpu'), ['embed']);
  assert.ok(queuesOfKind('cpu').includes('control') && !queuesOfKind('cpu').includes('annotate'));
  assert.throws(() => queuesOfKind('tpu'), /unknown worker kind "tpu"/);
});

test('two workers started on their own finish a run: the same triples as the local runner; SIGTERM returns the unit in hand', { timeout: 180_000 }, async () => {
  const run = newRun('two');
  // No grace period: a stopping worker hands its unit back at once (unless it finished first).
  const ws = await workers(run.file, 2, 0);
  const follower = cli(['run', '--config', run.file]);
  // Stop whichever worker starts an embed unit first: it hands back (or finishes) that unit and exits 0.
  const first = await Promise.race(ws.map((w, i) => w.waitFor(/start (embed\.[\w-]+)\n/).then((m) => ({ i, id: m[1] }))));
  const stopped = ws[first.i];
  stopped.child.kill('SIGTERM');
  assert.deepEqual(await stopped.exited, { code: 0, signal: null });
  assert.match(stopped.out(), new RegExp(`(done|returned) ${first.id.replace('.', '\\.')}`));
  assert.match(stopped.out(), /stopped\n/);
  assert.equal((await follower.exited).code, 0);
  assert.ok(ws.some((w) => w.out().includes(`done ${first.id}`)), `${first.id} was never completed`);
  assert.match(follower.out(), /triples +\d+/);
  assert.equal(run.jsonl(), reference);
  // Between them, every unit ran once: 3 parts x (catalog, embed, mine, annotate, emit), 3 index shards,
  // 3 search units (one shard per space), 3 recall units, manifest, select, jsonl.
  const done = ws.flatMap((w) => [...w.out().matchAll(/done ((?:catalog|manifest|embed|index|search|recall|mine|select|annotate|emit|jsonl)\.[\w-]+)/g)].map((m) => m[1]));
  assert.equal(done.length, 27, done.join(' '));
  assert.equal(new Set(done).size, 27, 'no unit ran twice');
  await stop(ws);
});

test('kill -9 of a worker mid-unit: another worker takes the stalled unit and the output is complete, without duplicates', { timeout: 180_000 }, async () => {
  const run = newRun('kill');
  const ws = await workers(run.file, 2);
  const follower = cli(['run', '--config', run.file]);
  const victim = await Promise.race(ws.map((w, i) => w.waitFor(/start (embed\.[\w-]+)\n/).then((m) => ({ i, id: m[1] }))));
  ws[victim.i].child.kill('SIGKILL');
  assert.equal((await ws[victim.i].exited).signal, 'SIGKILL');
  const survivor = ws[1 - victim.i];
  assert.equal((await follower.exited).code, 0);
  const lines = run.jsonl().split('\n').filter(Boolean);
  assert.equal(new Set(lines).size, lines.length, 'no duplicate triples');
  assert.equal(run.jsonl(), reference);
  // The unit in hand was finished by one of them: by the survivor unless the victim got there first.
  const doneBy = (w: Proc) => w.out().includes(`done ${victim.id}`);
  assert.ok(doneBy(ws[victim.i]) || doneBy(survivor), `${victim.id} was never completed`);
  assert.doesNotMatch(await runStatus(parseConfig(run.obj)), /failed units/);
  await stop(ws);
});

function mtimes(root: string): Map<string, number> {
  const out = new Map<string, number>();
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) {
        if (e.name !== '.cache') walk(p);
      } else if (!e.name.startsWith('.')) out.set(path.relative(root, p), statSync(p).mtimeMs);
    }
  };
  walk(root);
  return out;
}

test('a run restarted after a crash recomputes nothing that was complete; re-enqueueing adds nothing', { timeout: 240_000 }, async () => {
  const run = newRun('restart');
  let ws = await workers(run.file, 2);
  let follower = cli(['run', '--config', run.file]);
  // Crash everything once the index stage is under way.
  await Promise.race(ws.map((w) => w.waitFor(/start index\./)));
  for (const p of [...ws, follower]) p.child.kill('SIGKILL');
  await Promise.all([...ws, follower].map((p) => p.exited));
  const before = mtimes(run.root);
  assert.ok([...before.keys()].some((k) => k.startsWith('work/embeddings/')), 'the crash came after embedding');

  ws = await workers(run.file, 2);
  follower = cli(['run', '--config', run.file]);
  assert.equal((await follower.exited).code, 0);
  assert.equal(run.jsonl(), reference);
  const afterRestart = mtimes(run.root);
  for (const [file, t] of before) assert.equal(afterRestart.get(file), t, `${file} was rewritten`);

  // The same run enqueued again: no new jobs, nothing runs, the summary comes back.
  const status = await runStatus(parseConfig(run.obj));
  const again = cli(['run', '--config', run.file]);
  assert.equal((await again.exited).code, 0);
  assert.match(again.out(), /triples +\d+/);
  assert.equal(await runStatus(parseConfig(run.obj)), status);
  await stop(ws);

  // Redis lost (a fresh prefix), artifacts kept: every unit is enqueued again and skipped.
  const fresh = parseConfig({ ...run.obj, redis: { prefix: `${run.prefix}-fresh` } });
  prefixes.push(`${run.prefix}-fresh`);
  const w = await startWorker(fresh, 'all', { concurrency: 1 });
  try {
    const result = await runDistributed(fresh, { write: () => {}, pollMs: 100 });
    assert.equal(result.reports.reduce((a, r) => a + r.units, 0), 27, 'every unit was enqueued again');
    for (const r of result.reports) assert.equal(r.skipped, r.units, `${r.stage} recomputed ${r.units - r.skipped} units`);
  } finally {
    await w.stop();
  }
  const final = mtimes(run.root);
  for (const [file, t] of afterRestart) if (!file.endsWith('summary.json')) assert.equal(final.get(file), t, `${file} was rewritten`);
  assert.equal(run.jsonl(), reference);
});

test('a unit that keeps failing lands in the failed set and the ledger; retry-failed requeues it', { timeout: 120_000 }, async () => {
  const models = await ensureBuiltinModels(path.join(cacheDir, 'models'));
  const run = newRun('retry', {
    // The colour model is missing until the test puts it in place, so every embed unit fails.
    encoders: { visual_pattern: { model: 'colour.onnx', ...BUILTIN_IMAGE_PREPROCESS.colour } },
    runner: { kind: 'distributed', concurrency: 1, lock_ms: 2000, backoff_ms: 20, attempts: 2 },
  });
  const config = parseConfig(run.obj, { baseDir: run.root });
  const w = await startWorker(config, 'all', { concurrency: 1 });
  try {
    await assert.rejects(runDistributed(config, { write: () => {}, pollMs: 100 }), (e: Error) => {
      assert.ok(e instanceof RunFailedError);
      assert.match(e.message, /embed\.part-00000 \(2 attempts\): .*cannot load ONNX model/);
      assert.match(e.message, /retry-failed/);
      return true;
    });
    const ctx = createContext(config);
    const unitFailures = (await readLedger(ctx.work)).filter((f) => f.reason === 'unit_failed');
    assert.deepEqual(unitFailures.map((f) => `${f.stage}/${f.unit}`).sort(), ['embed/part-00000', 'embed/part-00001', 'embed/part-00002']);
    assert.match(await runStatus(config), /embed +0 +0 +0 +3/);

    copyFileSync(models.colour, path.join(run.root, 'colour.onnx'));
    assert.deepEqual((await retryFailed(config)).sort(), ['embed.part-00000', 'embed.part-00001', 'embed.part-00002']);
    const result = await runDistributed(config, { write: () => {}, pollMs: 100 });
    assert.deepEqual(result.summary.failures, {}, 'the ledger no longer names the units');
    assert.equal(result.summary.images.catalogued, 150);
    assert.equal(readFileSync(path.join(run.root, 'output', 'summary.json'), 'utf8'), JSON.stringify(result.summary, null, 1));
  } finally {
    await w.stop();
  }
});

test('a worker started with another config refuses the run\'s jobs, naming the sections that differ', { timeout: 60_000 }, async () => {
  const run = newRun('mismatch');
  const config = parseConfig(run.obj, { baseDir: run.root });
  const other = parseConfig({ ...run.obj, mine: { ...(run.obj.mine as object), k: 7 } }, { baseDir: run.root });
  const w = await startWorker(other, 'all', { concurrency: 1 });
  try {
    await assert.rejects(runDistributed(config, { write: () => {}, pollMs: 100 }), (e: Error) => {
      assert.ok(e instanceof RunFailedError);
      assert.match(e.message, /differs from the run's in mine: start workers with the run's config/);
      return true;
    });
    assert.ok(!readdirSync(run.root).includes('work'), 'nothing was written');
  } finally {
    await w.stop();
  }
});
