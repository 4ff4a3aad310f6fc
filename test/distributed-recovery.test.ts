// Recovery of a distributed run, against a real Redis and real worker processes, with the faults
// made to happen: workers killed with -9 (stalls apart from attempts, and past runner.max_stalls),
// the run's keys deleted from Redis under a running follower, a queue no worker serves; `status`
// naming the workers per queue; stage times from the units' own timestamps on a re-follow.
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseConfig } from '../src/config/load.ts';
import { readLedger } from '../src/ledger/ledger.ts';
import type { Config } from '../src/config/schema.ts';
import { resolveRun } from '../src/provenance/resolve-run.ts';
import { createContext } from '../src/runner/context.ts';
import type { StageContext } from '../src/core/stage.ts';
import { runDistributed, RunFailedError } from '../src/runner/distributed/follow.ts';
import { runStatus } from '../src/runner/distributed/status.ts';
import { startWorker } from '../src/runner/distributed/worker.ts';
import { cli, dropKeys, firstTo, newRun as newRunIn, redisKeys, stop, workers, type Proc, localReference } from './distributed-harness.ts';
import { tempDir } from './helpers.ts';

process.env.MEGAPAIRS_CACHE = tempDir('dist-rec-cache');
let input: string;
let reference: string;

before(async () => void ({ input, reference } = await localReference('dist-rec')));

const newRun = (name: string, runner: Record<string, unknown>) =>
  newRunIn(input, name, { runner: { kind: 'distributed', concurrency: 1, lock_ms: 2000, backoff_ms: 100, ...runner } });

/** Starts of each unit already acted on, per worker process. */
const seenStarts = new Map<Proc, number>();

/** Kills (-9) the next live worker to start `unit` (a start not acted on yet), and starts a fresh worker in its place. */
/** A context under the config's keys, to read its ledger. */
async function resolvedContext(config: Config): Promise<StageContext> {
  const ctx = createContext(config);
  await resolveRun(ctx);
  return ctx;
}

async function killHolderOf(ws: Proc[], file: string, unit: string): Promise<void> {
  // Job ids hold the stage's provenance key: "<stage>.<key>.<unit>".
  const [stage, unitId] = unit.split('.');
  const re = new RegExp(`start ${stage}\\.[0-9a-f]{12}\\.${unitId}\n`, 'g');
  for (;;) {
    const holder = ws.find((w) => w.child.exitCode === null && w.child.signalCode === null && (w.out().match(re)?.length ?? 0) > (seenStarts.get(w) ?? 0));
    if (holder) {
      seenStarts.set(holder, holder.out().match(re)!.length);
      holder.child.kill('SIGKILL');
      await holder.exited;
      ws.push(...(await workers(file, 1)));
      return;
    }
    await sleep(50);
  }
}

test('a unit whose worker is killed -9 twice completes with runner.attempts 1: stalls are not attempts', { timeout: 420_000 }, async () => {
  const run = newRun('stalls', { attempts: 1, max_stalls: 5 });
  const ws = await workers(run.file, 2);
  const follower = cli(['run', '--config', run.file]);
  await killHolderOf(ws, run.file, 'embed.part-00000');
  await killHolderOf(ws, run.file, 'embed.part-00000');
  assert.equal((await follower.exited).code, 0);
  assert.equal(run.jsonl(), reference);
  // Both holders were killed mid-unit (each after its start line): with one attempt allowed and
  // stalls counted as attempts (BullMQ's maxStalledCount at runner.attempts), the second death
  // would have failed the unit.
  assert.ok(ws.some((w) => /stalled embed\.[0-9a-f]{12}\.part-00000: its worker stopped renewing the lock/.test(w.out())));
  assert.deepEqual(
    (await readLedger(await resolvedContext(parseConfig(run.obj)))).filter((f) => f.reason.startsWith('unit_')),
    [],
  );
  await stop(ws);
});

test('a unit that loses its worker more than runner.max_stalls times fails for good, as unit_stalled in the ledger', { timeout: 300_000 }, async () => {
  const run = newRun('maxstalls', { attempts: 3, max_stalls: 0 });
  const config = parseConfig(run.obj);
  const ws = await workers(run.file, 2);
  const failure = runDistributed(createContext(config), { write: () => {}, pollMs: 200 }).then(
    () => undefined,
    (e: Error) => e,
  );
  await killHolderOf(ws, run.file, 'embed.part-00001');
  const e = await failure;
  assert.ok(e instanceof RunFailedError, String(e));
  // BullMQ counts the failing of the stalled job as its one attempt; the three allowed were never tried.
  assert.match(e.message, /embed\.[0-9a-f]{12}\.part-00001 \(1 attempts, 1 stalls\): job stalled more than allowable limit/);
  const entries = (await readLedger(await resolvedContext(config))).filter((f) => f.reason.startsWith('unit_'));
  assert.deepEqual(
    entries.map((f) => `${f.stage}/${f.unit} ${f.reason}`),
    ['embed/part-00001 unit_stalled'],
  );
  assert.match(entries[0].message, /stopped renewing the lock 1 times .*runner\.max_stalls \(0\)/);
  await stop(ws);
});

test('a follower whose Redis lost the run says so and enqueues it again; the run completes', { timeout: 420_000 }, async () => {
  const run = newRun('lost', {});
  const ws = await workers(run.file, 2);
  const follower = cli(['run', '--config', run.file]);
  await firstTo(ws, /done embed\./);
  assert.ok((await dropKeys(`${run.prefix}:*`)) > 0);
  assert.equal((await follower.exited).code, 0);
  assert.match(follower.err(), /no longer holds run test \(its keys are gone.*\); enqueueing it again/);
  assert.match(follower.out(), /triples +\d+/);
  assert.equal(run.jsonl(), reference);
  await stop(ws);
});

test('a queue no worker serves: the hint names the kinds that serve it, status names the workers per queue; stage times from the units on a re-follow', {
  timeout: 300_000,
}, async () => {
  const run = newRun('unserved', {});
  const config = parseConfig(run.obj);
  const [cpu] = await workers(run.file, 1, 10, 'cpu');
  const lines: string[] = [];
  let onHint!: () => void;
  const hinted = new Promise<void>((resolve) => (onHint = resolve));
  const following = runDistributed(createContext(config), {
    pollMs: 200,
    quietMs: 1000,
    configFile: run.file,
    // (The cpu worker waits for the run to be published first, so control may be unserved a moment.)
    write: (l) => (lines.push(l), l.startsWith('no worker serves embed') && onHint()),
  });
  following.catch(() => onHint()); // a failure shows in the assertions below
  await hinted;
  assert.ok(lines.includes(`no worker serves embed: start one (\`megapairs worker gpu --config ${run.file}\`; also served by: all, embed)`), lines.join('\n'));
  const status = await runStatus(config);
  const row = (q: string) =>
    status
      .split('\n')
      .find((l) => l.startsWith(`${q} `))!
      .trim()
      .split(/ +/);
  assert.equal(row('embed').at(-1), '0');
  assert.equal(row('catalog').at(-1), '1');
  assert.match(status, new RegExp(`^ +mine +[\\w.-]+-${cpu.child.pid}$`, 'm'));
  assert.match(status, /^ +embed +\(none\)$/m);

  // A worker for the rest (annotate is unserved too, once mining is done).
  const gpu = await startWorker(createContext(config), 'all', { concurrency: 1 });
  try {
    const result = await following;
    assert.equal(run.jsonl(), reference);
    // A second follower, after the fact: the same stage times, from the units' own timestamps.
    const again: string[] = [];
    const second = await runDistributed(createContext(config), { write: (l) => again.push(l), pollMs: 100 });
    assert.deepEqual(second.summary.seconds, result.summary.seconds);
    for (const r of result.reports) {
      if (!r.units) continue;
      const line = again.find((l) => l.startsWith(`[${r.stage.padEnd(8)}] ${r.units}/${r.units} units`));
      assert.ok(line, `${r.stage}: ${again.join('\n')}`);
      assert.ok(line.endsWith(` ${r.seconds.toFixed(1)}s`), `${line} vs ${r.seconds}`);
    }
  } finally {
    await gpu.stop();
    await stop([cpu]);
  }
});

test('finished phases leave Redis: completed jobs trimmed, the summary kept; clean removes the run; run again plans nothing', {
  timeout: 300_000,
}, async () => {
  const run = newRun('retention', {});
  const config = parseConfig(run.obj);
  const started: string[] = [];
  // The follower publishes the run first: a worker serves only a published run.
  const following = runDistributed(createContext(config), { write: () => {}, pollMs: 100 });
  const w = await startWorker(createContext(config), 'all', { concurrency: 1, log: (l) => l.startsWith('start ') && started.push(l.slice(6)) });
  try {
    const result = await following;
    assert.equal(run.jsonl(), reference);
    const keys = await redisKeys(`${run.prefix}:*`);
    assert.deepEqual(
      keys.filter((k) => /:(catalog|manifest|embed|index|mine|annotate|emit|export)\.[\w.-]+$/.test(k)),
      [],
      'no unit job is left',
    );
    const status = await runStatus(config);
    assert.match(status, /phases done/);
    assert.match(status, /^ +embed +3 units \(0 already complete\) {2}150 items/m);
    // What a follower needs is kept: the same summary, followed again.
    assert.deepEqual((await runDistributed(createContext(config), { write: () => {}, pollMs: 100 })).summary, result.summary);

    const clean = cli(['clean', '--run', 'test', '--config', run.file]);
    assert.equal((await clean.exited).code, 0);
    assert.match(clean.out(), /removed \d+ Redis key\(s\) of run test/);
    assert.deepEqual(await redisKeys(`${run.prefix}:*`), []);

    // Enqueued again from nothing: every unit's artifact is complete, so no unit job is enqueued.
    started.length = 0;
    const again = await runDistributed(createContext(config), { write: () => {}, pollMs: 100 });
    assert.deepEqual(
      started.filter((id) => !/^(start|after\.)/.test(id)),
      [],
      'no unit ran',
    );
    for (const r of again.reports) assert.equal(r.skipped, r.units, r.stage);
    assert.equal(
      again.reports.reduce((a, r) => a + r.units, 0),
      27, // 3 parts x (catalog, embed, mine, annotate, emit), 3 index, 3 search, 3 recall, manifest, select, jsonl
    );
    assert.equal(again.summary.triples, result.summary.triples);
  } finally {
    await w.stop();
  }
});
