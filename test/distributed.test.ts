// The distributed runner against a real Redis: worker processes spawned as a user would start
// them (`megapairs worker all`), runs followed by `megapairs run`, SIGTERM, kill -9, a restart
// after a crash, and a unit that keeps failing. Each test has its own key prefix, removed after.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { before, test } from 'node:test';
import { stringify } from 'yaml';
import { parseConfig } from '../src/config/load.ts';
import { resolveRun } from '../src/provenance/resolve-run.ts';
import { readLedger } from '../src/ledger/ledger.ts';
import { createContext } from '../src/runner/context.ts';
import { describeRedis, redisOptions } from '../src/runner/distributed/connection.ts';
import { runDistributed, RunFailedError } from '../src/runner/distributed/follow.ts';
import { queuesOfKind } from '../src/runner/distributed/kinds.ts';
import { retryFailed, runStatus } from '../src/runner/distributed/status.ts';
import { startWorker } from '../src/runner/distributed/worker.ts';
import { runLocal } from '../src/runner/local.ts';
import { ProgressReporter } from '../src/runner/progress.ts';
import { cli, newRun as newRunIn, ownPrefix, stop, workers, type Proc, localReference } from './distributed-harness.ts';
import { demoConfig, tempDir } from './helpers.ts';
import { shared } from '../src/stages/shared-resources.ts';

const cacheDir = tempDir('dist-cache');
process.env.MEGAPAIRS_CACHE = cacheDir; // built-in models made once for every process here
let input: string;
let reference: string;

before(async () => void ({ input, reference } = await localReference('dist')));

const newRun = (name: string, extra: Record<string, unknown> = {}) => newRunIn(input, name, extra);

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

test('two workers started on their own finish a run: the same triples as the local runner; SIGTERM returns the unit in hand', {
  timeout: 180_000,
}, async () => {
  const run = newRun('two');
  // No grace period: a stopping worker hands its unit back at once (unless it finished first).
  const ws = await workers(run.file, 2, 0);
  const follower = cli(['run', '--config', run.file]);
  // Stop whichever worker starts an embed unit first: it hands back (or finishes) that unit and exits 0.
  const first = await Promise.race(ws.map((w, i) => w.waitFor(/start (embed\.[\w.-]+)\n/).then((m) => ({ i, id: m[1] }))));
  const stopped = ws[first.i];
  stopped.child.kill('SIGTERM');
  assert.deepEqual(await stopped.exited, { code: 0, signal: null });
  assert.match(stopped.out(), new RegExp(`(done|returned) ${first.id.replaceAll('.', '\\.')}`));
  assert.match(stopped.out(), /stopped\n/);
  assert.equal((await follower.exited).code, 0);
  assert.ok(
    ws.some((w) => w.out().includes(`done ${first.id}`)),
    `${first.id} was never completed`,
  );
  assert.match(follower.out(), /triples +\d+/);
  assert.equal(run.jsonl(), reference);
  // Between them, every unit ran once: 3 parts x (catalog, embed, mine, annotate, emit), 3 index shards,
  // 3 search units (one shard per space), 3 recall units, manifest, select, jsonl.
  const done = ws.flatMap((w) =>
    [...w.out().matchAll(/done ((?:catalog|manifest|embed|index|search|recall|mine|select|annotate|emit|jsonl)\.[\w.-]+)/g)].map((m) => m[1]),
  );
  assert.equal(done.length, 27, done.join(' '));
  assert.equal(new Set(done).size, 27, 'no unit ran twice');
  await stop(ws);
});

test("routed shards (index.probe_shards): partition, then assign and route units run between embed and index, and the triples are the local runner's", {
  timeout: 240_000,
}, async () => {
  const routed = { index: { shard_size: 40, probe_shards: 2 } };
  const local = tempDir('dist-routed-ref');
  const localRun = createContext(demoConfig(input, local, routed));
  await runLocal(localRun, { progress: new ProgressReporter(process.stderr, true) });
  const run = newRun('routed', routed);
  const ws = await workers(run.file, 2);
  const follower = cli(['run', '--config', run.file]);
  assert.equal((await follower.exited).code, 0, follower.out());
  assert.equal(run.jsonl(), readFileSync(path.join(local, 'output', 'megapairs.jsonl'), 'utf8'));
  const done = ws.flatMap((w) => [...w.out().matchAll(/done (partition|assign|route|index)\.([\w.-]+)/g)].map((m) => `${m[1]}.${m[2]}`));
  const parts = (await shared(localRun).manifest()).parts.length;
  const count = (stage: string) => done.filter((d) => d.startsWith(`${stage}.`)).length;
  assert.deepEqual([count('partition'), count('assign'), count('route'), count('index')], [3, parts, parts, 12], done.join(' '));
  await stop(ws);
});

test('kill -9 of a worker mid-unit: another worker takes the stalled unit and the output is complete, without duplicates', { timeout: 180_000 }, async () => {
  const run = newRun('kill');
  const ws = await workers(run.file, 2);
  const follower = cli(['run', '--config', run.file]);
  const victim = await Promise.race(ws.map((w, i) => w.waitFor(/start (embed\.[\w.-]+)\n/).then((m) => ({ i, id: m[1] }))));
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
  assert.ok(
    [...before.keys()].some((k) => k.startsWith('work/embeddings/')),
    'the crash came after embedding',
  );

  ws = await workers(run.file, 2);
  follower = cli(['run', '--config', run.file]);
  assert.equal((await follower.exited).code, 0);
  assert.equal(run.jsonl(), reference);
  const afterRestart = mtimes(run.root);
  // The run's record (work/runs/) is written by every `megapairs run`; no artifact is.
  for (const [file, t] of before) if (!file.startsWith('work/runs/')) assert.equal(afterRestart.get(file), t, `${file} was rewritten`);

  // The same run enqueued again: no new jobs, nothing runs, the summary comes back.
  const status = await runStatus(parseConfig(run.obj));
  const again = cli(['run', '--config', run.file]);
  assert.equal((await again.exited).code, 0);
  assert.match(again.out(), /triples +\d+/);
  assert.equal(await runStatus(parseConfig(run.obj)), status);
  await stop(ws);

  // Redis lost (a fresh prefix), artifacts kept: every unit is enqueued again and skipped.
  const fresh = parseConfig({ ...run.obj, redis: { prefix: `${run.prefix}-fresh` } });
  ownPrefix(`${run.prefix}-fresh`);
  const following = runDistributed(createContext(fresh), { write: () => {}, pollMs: 100 });
  const w = await startWorker(createContext(fresh), 'all', { concurrency: 1 });
  try {
    const result = await following;
    assert.equal(
      result.reports.reduce((a, r) => a + r.units, 0),
      27,
      'every unit was enqueued again',
    );
    for (const r of result.reports) assert.equal(r.skipped, r.units, `${r.stage} recomputed ${r.units - r.skipped} units`);
  } finally {
    await w.stop();
  }
  const final = mtimes(run.root);
  for (const [file, t] of afterRestart)
    if (!file.endsWith('summary.json') && !file.endsWith('report.html') && !file.startsWith('work/runs/'))
      assert.equal(final.get(file), t, `${file} was rewritten`);
  assert.equal(run.jsonl(), reference);
});

test('a unit that keeps failing lands in the failed set and the ledger; retry-failed requeues it', { timeout: 120_000 }, async () => {
  const run = newRun('retry', { runner: { kind: 'distributed', concurrency: 1, lock_ms: 2000, backoff_ms: 20, attempts: 2 } });
  // A file where the index folder must go: every index unit fails to write, an environmental fault.
  mkdirSync(path.join(run.root, 'work'), { recursive: true });
  writeFileSync(path.join(run.root, 'work', 'index'), 'in the way');
  const config = parseConfig(run.obj, { baseDir: run.root });
  const failing = runDistributed(createContext(config), { write: () => {}, pollMs: 100 });
  const w = await startWorker(createContext(config), 'all', { concurrency: 1 });
  try {
    await assert.rejects(failing, (e: Error) => {
      assert.ok(e instanceof RunFailedError);
      assert.match(e.message, /index\.[0-9a-f]{12}\.caption-shard-00 \(2 attempts\): .*(ENOTDIR|EEXIST)/);
      assert.match(e.message, /retry-failed/);
      return true;
    });
    const ctx = createContext(config);
    await resolveRun(ctx);
    const unitFailures = (await readLedger(ctx)).filter((f) => f.reason === 'unit_failed');
    assert.deepEqual(unitFailures.map((f) => `${f.stage}/${f.unit}`).sort(), [
      'index/caption-shard-00',
      'index/visual_pattern-shard-00',
      'index/visual_semantic-shard-00',
    ]);
    assert.match(await runStatus(config), /index +0 +0 +0 +3/);

    rmSync(path.join(run.root, 'work', 'index'));
    assert.equal((await retryFailed(config)).length, 3);
    const result = await runDistributed(createContext(config), { write: () => {}, pollMs: 100 });
    assert.deepEqual(result.summary.failures, {}, 'the ledger no longer names the units');
    assert.equal(result.summary.images.catalogued, 150);
    assert.equal(readFileSync(path.join(run.root, 'output', 'summary.json'), 'utf8'), JSON.stringify(result.summary, null, 1));
  } finally {
    await w.stop();
  }
});

test('a worker whose config decides other artifacts refuses at start (exit 2, naming them); one on a symlinked mount serves the run', {
  timeout: 120_000,
}, async () => {
  const run = newRun('mismatch');
  const config = parseConfig(run.obj, { baseDir: run.root });
  const following = runDistributed(createContext(config), { write: () => {}, pollMs: 100 });
  const otherFile = path.join(run.root, 'other.yaml');
  writeFileSync(otherFile, stringify({ ...run.obj, mine: { ...(run.obj.mine as object), k: 7 } }));
  const refused = cli(['worker', 'all', '--config', otherFile]);
  const { code } = await refused.exited;
  assert.equal(code, 2);
  assert.match(refused.err(), /differs from run test .*\n(.*\n)* {2}mine: mine\.k: 20 -> 7\n/);
  assert.doesNotMatch(refused.out(), /start /, 'it took no job');

  // The same storage reached by another path (another node's mount): the same run.
  const mount = `${run.root}-mount`;
  symlinkSync(run.root, mount);
  const viaMount = { ...run.obj, input: { ...(run.obj.input as object) }, work: path.join(mount, 'work'), output: path.join(mount, 'output') };
  const mountFile = path.join(run.root, 'mount.yaml');
  writeFileSync(mountFile, stringify(viaMount));
  const w = cli(['worker', 'all', '--config', mountFile]);
  await w.waitFor(/ready: /);
  await following;
  assert.equal(run.jsonl(), reference);
  await stop([w]);

  // Storage that is not the run's (no marker, another folder) is refused by identity, not by path.
  const elsewhere = tempDir('dist-elsewhere');
  const wrongFile = path.join(run.root, 'wrong.yaml');
  writeFileSync(wrongFile, stringify({ ...run.obj, work: path.join(elsewhere, 'work') }));
  const wrong = cli(['worker', 'all', '--config', wrongFile]);
  assert.equal((await wrong.exited).code, 2);
  assert.match(wrong.err(), /work: .* is not the run's work storage \(no marker at /);
});

test('a follower whose run is restarted under a changed config says it was superseded and exits non-zero', { timeout: 120_000 }, async () => {
  const run = newRun('superseded');
  const following = async (p: Proc) => {
    while (!p.err().includes('following it')) await new Promise((r) => setTimeout(r, 100));
  };
  // No workers: the first run cannot finish before the second takes its name.
  const first = cli(['run', '--config', run.file]);
  await following(first);
  const file = path.join(run.root, 'k7.yaml');
  writeFileSync(file, stringify({ ...run.obj, mine: { ...(run.obj.mine as object), k: 7 } }));
  const second = cli(['run', '--config', file]);
  await following(second);
  assert.equal((await first.exited).code, 1);
  assert.match(first.err(), /run \S+ \(key \w+\) was superseded: another `megapairs run` started it with a changed config \(key \w+\)/);
  second.child.kill('SIGTERM');
  await second.exited;
});

test('a run restarted with a changed config and a new output computes only what changed and reports itself, not the old run', {
  timeout: 240_000,
}, async () => {
  const run = newRun('changed');
  const old = await workers(run.file, 1);
  assert.equal((await cli(['run', '--config', run.file]).exited).code, 0);

  const changed = { ...run.obj, mine: { ...(run.obj.mine as object), k: 7 }, output: path.join(run.root, 'output-k7') };
  const file = path.join(run.root, 'k7.yaml');
  writeFileSync(file, stringify(changed));
  const follower = cli(['run', '--config', file]);
  // The worker started with the old config takes a job of the new run, hands it back and refuses.
  assert.equal((await old[0].exited).code, 2);
  assert.match(old[0].err(), /\n {2}mine: mine\.k: 7 -> 20\n/, "the run's value, then this worker's");
  const ws = await workers(file, 1);
  assert.equal((await follower.exited).code, 0);
  const summary = JSON.parse(readFileSync(path.join(run.root, 'output-k7', 'summary.json'), 'utf8'));
  assert.ok(existsSync(path.join(run.root, 'output-k7', 'megapairs.jsonl')), 'the new output was written');
  for (const s of ['catalog', 'manifest', 'embed', 'index']) assert.equal(summary.stages[s].status, 'reused', s);
  for (const s of ['search', 'recall', 'mine', 'select', 'annotate', 'emit', 'jsonl']) assert.equal(summary.stages[s].status, 'computed', s);
  assert.match(summary.stages.mine.reason, /mine\.k: 20 -> 7/);
  assert.equal(
    summary.triples,
    readFileSync(path.join(run.root, 'output-k7', 'megapairs.jsonl'), 'utf8')
      .split('\n')
      .filter(Boolean).length,
  );
  await stop(ws);
});
