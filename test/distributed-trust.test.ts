// What a distributed run can be trusted with, against a real Redis and real worker processes:
// the files decide what is done (a rerun after another config's run, or after a deleted output
// part, rebuilds and matches a fresh run); a worker proves it reads the run's corpus and embeds
// at the run's batch sizes, or is refused at start; bytes other than the catalog recorded fail
// the unit, not the images; and a worker killed -9 strands only the jobs it runs, back within
// about lock_ms.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { copyFileSync, cpSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { Queue } from 'bullmq';
import { stringify } from 'yaml';
import { parseConfig } from '../src/config/load.ts';
import { readLedger } from '../src/ledger/ledger.ts';
import { resolveRun } from '../src/provenance/resolve-run.ts';
import { createContext } from '../src/runner/context.ts';
import { runDistributed } from '../src/runner/distributed/follow.ts';
import { startWorker } from '../src/runner/distributed/worker.ts';
import { runStage } from '../src/runner/local.ts';
import { ProgressReporter } from '../src/runner/progress.ts';
import { stagesByName } from '../src/pipeline.ts';
import { cli, newRun as newRunIn, stop, workers, type Proc, localReference } from './distributed-harness.ts';
import { demoConfig, stagesUpTo, tempDir } from './helpers.ts';

process.env.MEGAPAIRS_CACHE = tempDir('dist-trust-cache');
let input: string;
let reference: string;

before(async () => void ({ input, reference } = await localReference('dist-trust')));

const newRun = (name: string, runner: Record<string, unknown> = {}) =>
  newRunIn(input, name, { runner: { kind: 'distributed', concurrency: 1, lock_ms: 2000, backoff_ms: 100, ...runner } });

const summaryOf = (root: string, output = 'output') => JSON.parse(readFileSync(path.join(root, output, 'summary.json'), 'utf8'));
const statuses = (summary: { stages: Record<string, { status: string }> }) => Object.fromEntries(Object.entries(summary.stages).map(([s, v]) => [s, v.status]));

test('files decide: A, then B (another mine.k, same output), then A again rebuilds A; a deleted triples part is rebuilt; both say what they reused', {
  timeout: 420_000,
}, async () => {
  const run = newRun('aba');
  /** `megapairs run` of a config file; workers for it are started once it has published its run (a worker serves only the published one). */
  const follow = async (file: string, start = 0) => {
    const follower = cli(['run', '--config', file]);
    while (!follower.err().includes('following it')) await sleep(100);
    const ws = await workers(file, start);
    assert.equal((await follower.exited).code, 0, follower.err());
    return { follower, ws };
  };
  const first = await follow(run.file, 2);
  assert.equal(run.jsonl(), reference);
  const fileB = path.join(run.root, 'k7.yaml');
  writeFileSync(fileB, stringify({ ...run.obj, mine: { ...(run.obj.mine as object), k: 7 } }));
  // A's workers refuse B's run; B gets a worker of its own.
  const b = await follow(fileB, 1);
  assert.notEqual(run.jsonl(), reference, "B's triples replaced A's in the output");
  await stop([...first.ws, ...b.ws]);

  // Redis holds A as finished; storage holds B's product. The files decide.
  const again = await follow(run.file, 2);
  assert.match(again.follower.err(), /finished before, but storage lacks 3 of 3 emit unit\(s\)' artifacts .*running it again/);
  assert.equal(run.jsonl(), reference);
  assert.deepEqual(statuses(summaryOf(run.root)), {
    catalog: 'reused',
    manifest: 'reused',
    embed: 'reused',
    partition: 'not needed',
    assign: 'not needed',
    route: 'not needed',
    index: 'reused',
    search: 'reused',
    recall: 'reused',
    mine: 'reused',
    select: 'reused',
    annotate: 'reused',
    emit: 'computed',
    jsonl: 'computed',
  });

  // A deleted output part: rebuilt, the rest reused, and said so.
  rmSync(path.join(run.root, 'output', 'triples', 'part-00001.parquet'));
  const rebuilt = await follow(run.file);
  assert.match(rebuilt.follower.err(), /storage lacks 1 of 3 emit unit\(s\)' artifacts/);
  assert.equal(run.jsonl(), reference);
  const summary = summaryOf(run.root);
  assert.equal(summary.stages.emit.status, 'partly reused');
  assert.match(summary.stages.emit.reason, /resumed: 1 of 3 units were not complete/);
  assert.equal(summary.stages.emit.units, 3);
  assert.equal(summary.stages.annotate.status, 'reused');
  assert.equal(summary.triples, reference.split('\n').filter(Boolean).length);
  // Complete in storage and finished in Redis: nothing to redo.
  const followAgain = await follow(run.file);
  assert.doesNotMatch(followAgain.follower.err(), /storage lacks/);
  await stop(again.ws);
});

test('a worker on another corpus (other tars under the same names) or at another batch size is refused at start, naming both values', {
  timeout: 180_000,
}, async () => {
  const run = newRun('identity');
  // A run published, with no worker: its follower waits.
  const follower = cli(['run', '--config', run.file]);
  while (!follower.err().includes('following it')) await sleep(100);

  const other = tempDir('dist-other-corpus');
  cpSync(input, other, { recursive: true });
  copyFileSync(path.join(input, '00001.tar'), path.join(other, '00000.tar')); // 00000.tar: another shard's bytes
  const otherFile = path.join(run.root, 'other-corpus.yaml');
  writeFileSync(otherFile, stringify({ ...run.obj, input: { ...(run.obj.input as object), path: other } }));
  const onOther = cli(['worker', 'all', '--config', otherFile]);
  assert.equal((await onOther.exited).code, 2);
  assert.match(onOther.err(), /\n {2}catalog: part-00000 tar\.(size|version): \S+ -> \S+\n/, 'both identities, by part');
  assert.doesNotMatch(onOther.out(), /start /, 'it took no job');

  const batchFile = path.join(run.root, 'batch3.yaml');
  writeFileSync(batchFile, stringify({ ...run.obj, encoders: { visual_pattern: { model: 'builtin:colour', batch_size: 3 } } }));
  const atBatch3 = cli(['worker', 'all', '--config', batchFile]);
  assert.equal((await atBatch3.exited).code, 2);
  assert.match(atBatch3.err(), /\n {2}embed: encoders\.visual_pattern\.batch_size: 32 -> 3\n/);
  follower.child.kill('SIGTERM');
  await follower.exited;
});

test('bytes other than the catalog recorded fail the embed unit (retryable), never as undecodable images', { timeout: 120_000 }, async () => {
  const corpus = tempDir('dist-changed-corpus');
  cpSync(input, corpus, { recursive: true });
  const root = tempDir('dist-changed');
  const ctx = createContext(demoConfig(corpus, root));
  await resolveRun(ctx);
  const progress = new ProgressReporter(process.stderr, true);
  for (const stage of stagesUpTo('manifest')) await runStage(ctx, stage, 1, progress);
  // The tar is replaced after it was catalogued: same name, other bytes.
  copyFileSync(path.join(input, '00001.tar'), path.join(corpus, '00000.tar'));
  await assert.rejects(runStage(ctx, stagesByName().get('embed')!, 1, progress), /00000\.tar.* changed: its version is .*, not .* as recorded/s);
  const ledger = (await readLedger(ctx)).filter((f) => f.stage === 'embed');
  assert.deepEqual(
    ledger.map((f) => `${f.stage}/${f.unit} ${f.reason} ${f.retryable}`),
    ['embed/part-00000 unit_failed true'],
  );
});

/** Every job's processedOn seen so far (a job taken again gets a new one), by job id. */
async function watchStarts(queue: Queue, seen: Map<string, number[]>): Promise<void> {
  for (const job of await queue.getJobs(['active', 'completed'])) {
    if (!job?.id || !job.processedOn) continue;
    const starts = seen.get(job.id) ?? [];
    if (!starts.includes(job.processedOn)) starts.push(job.processedOn);
    seen.set(job.id, starts);
  }
}

test('a worker takes jobs only for free threads; killed -9 holding two, they are taken again within about lock_ms', { timeout: 300_000 }, async (t) => {
  const lockMs = 4000;
  const run = newRun('prefetch', { lock_ms: lockMs, concurrency: 2 });
  const follower = cli(['run', '--config', run.file]);
  while (!follower.err().includes('following it')) await sleep(100);
  // The other worker is ready and frozen, so the victim takes the jobs (three threads: room for
  // the waiting embed unit and both of the victim's). A job it took before it froze is recovered.
  const rescuer = cli(['worker', 'all', '--config', run.file, '--concurrency', '3']);
  await rescuer.waitFor(/ready: /);
  rescuer.child.kill('SIGSTOP');
  const [victim] = (await workers(run.file, 1)) as [Proc];
  const connection = { host: '127.0.0.1', port: 6379 };
  const queues = ['catalog', 'manifest', 'embed', 'control'].map((q) => new Queue(`test.${q}`, { connection, prefix: run.prefix }));
  const embed = queues[2];
  const starts = new Map<string, number[]>();
  try {
    let held: string[] = [];
    for (;;) {
      const active = await embed.getJobs(['active']);
      if (active.length === 2 && active.every((j) => j?.processedOn)) {
        // Two threads, two jobs: the third embed unit waits for a thread, in the queue, not in this worker.
        const counts = await Promise.all(queues.slice(0, 3).map((q) => q.getJobCounts('active', 'wait')));
        assert.equal(
          counts.reduce((a, c) => a + c.active, 0),
          2,
          'the worker holds only what it runs',
        );
        assert.equal(counts[2].wait, 1);
        victim.child.kill('SIGKILL');
        held = active.map((j) => j!.id!);
        break;
      }
      await sleep(20);
    }
    await watchStarts(embed, starts);
    await victim.exited;
    rescuer.child.kill('SIGCONT');
    while (held.some((id) => (starts.get(id)?.length ?? 0) < 2)) {
      await watchStarts(embed, starts);
      await sleep(50);
    }
    for (const id of held) {
      const [first, second] = starts.get(id)!;
      t.diagnostic(`${id}: taken again ${second - first} ms after its first start (lock_ms ${lockMs})`);
      // Taken again by the rescuer: its lock lapsed (lock_ms after the last renewal) and the next
      // stalled check (every lock_ms/4) moved it back; not the two lock_ms of a check every lock_ms.
      assert.ok(second - first < 2 * lockMs, `${id} was taken again ${second - first} ms after its first start`);
    }
    assert.equal((await follower.exited).code, 0);
    assert.equal(run.jsonl(), reference);
    assert.match(rescuer.out(), /stalled embed\./);
  } finally {
    await Promise.all(queues.map((q) => q.close()));
    rescuer.child.kill('SIGCONT');
    await stop([rescuer]);
  }
});

test('a Redis outage: one line when it is lost and one when it is back, with its length; the follower waits for Redis, and the run completes', {
  timeout: 300_000,
}, async () => {
  // A Redis of this test's own (AOF on, as in production), killed -9 and restarted mid-run.
  const dir = tempDir('dist-outage-redis');
  const port = 20_000 + (process.pid % 20_000);
  const redis = () =>
    spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'yes', '--dir', dir], { stdio: 'ignore' });
  let server = redis();
  await sleep(500);
  const run = newRun('outage');
  const config = parseConfig({ ...run.obj, redis: { ...(run.obj.redis as object), url: `redis://127.0.0.1:${port}` } });
  const followerLines: string[] = [];
  const workerLines: string[] = [];
  const following = runDistributed(createContext(config), { write: (l) => followerLines.push(l), pollMs: 200, quietMs: 1000 });
  const w = await startWorker(createContext(config), 'all', { concurrency: 1, log: (l) => workerLines.push(l) });
  try {
    while (!workerLines.some((l) => l.startsWith('done embed.'))) await sleep(50);
    server.kill('SIGKILL');
    await once(server, 'exit');
    await sleep(3000);
    server = redis();
    const result = await following;
    assert.equal(result.summary.triples, reference.split('\n').filter(Boolean).length);
    assert.equal(run.jsonl(), reference);
    assert.equal(workerLines.filter((l) => l.startsWith('lost Redis at ')).length, 1, workerLines.join('\n'));
    assert.match(workerLines.find((l) => l.includes(' is back after '))!, /^Redis at redis:\/\/127\.0\.0\.1:\d+\/0 is back after \d+\.\ds down$/);
    assert.deepEqual(
      workerLines.filter((l) => /ECONNREFUSED|Connection is closed/.test(l)),
      [],
    );
    // (Before the worker started, control had no worker indeed.)
    const lost = followerLines.findIndex((l) => l.includes('waiting for Redis'));
    assert.ok(lost >= 0, followerLines.join('\n'));
    assert.match(followerLines.slice(lost).find((l) => l.includes(' is back after '))!, /is back after \d+\.\ds down$/);
    assert.ok(!followerLines.slice(lost).some((l) => l.startsWith('no worker serves')), followerLines.join('\n'));
  } finally {
    await w.stop();
    server.kill('SIGKILL');
  }
});
