// One writer per run: a second local `megapairs run` of the same run name and work folder finds
// the first's lease, names its holder, and exits 2 without touching anything; a lease left by a
// dead process (its pid gone on this host, or its heartbeat old) is taken over. A rerun with
// nothing to do keeps the summary.json and report.html of the run that did the work.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import { before, test } from 'node:test';
import { acquireRunLease, LEASE_HEARTBEAT_MS } from '../src/runner/lease.ts';
import { LocalStorage } from '../src/storage/local.ts';
import { cli } from './distributed-harness.ts';
import { demoConfigObject, readJsonl, sampleSlice, tempDir, writeConfigFile } from './helpers.ts';

process.env.MEGAPAIRS_CACHE = tempDir('lease-cache');
let input: string;
before(async () => {
  input = await sampleSlice();
});

async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setTimeout(r, 50));
}

test('two runs of one config at once: the second says who holds the run and exits 2; a rerun keeps the report', { timeout: 300_000 }, async () => {
  const root = tempDir('lease');
  const file = writeConfigFile(root, demoConfigObject(input, root));
  const lease = path.join(root, 'work', 'runs', 'test.lease.json');
  const first = cli(['run', '--config', file, '--no-preflight']);
  await until(() => existsSync(lease));
  const second = cli(['run', '--config', file, '--no-preflight']);
  assert.equal((await second.exited).code, 2);
  assert.match(second.err(), new RegExp(`run test in \\S+ is held by megapairs run \\(pid ${first.child.pid} on ${hostname()}`));
  assert.equal(second.out(), '', 'the second run printed no summary');
  assert.equal((await first.exited).code, 0);
  assert.ok(!existsSync(lease), 'released at the end');

  const out = path.join(root, 'output');
  const summaryFile = path.join(out, 'summary.json');
  const summary = JSON.parse(readFileSync(summaryFile, 'utf8'));
  assert.equal(summary.triples, readJsonl(path.join(out, 'megapairs.jsonl')).length, 'one run wrote the product, and the summary agrees');
  assert.ok(summary.seconds.embed > 0);

  // Nothing left to do: the summary and report of the run that did the work stay as they are.
  const before = { summary: readFileSync(summaryFile), report: readFileSync(path.join(out, 'report.html')), mtime: statSync(summaryFile).mtimeMs };
  const again = cli(['run', '--config', file, '--no-preflight']);
  assert.equal((await again.exited).code, 0);
  assert.match(again.out(), /nothing to do: every stage reused its artifacts; \S+summary\.json and \S+report\.html are kept from the run that did the work/);
  assert.match(again.out(), /wall time {3}catalog [0-9.]+s, manifest [0-9.]+s, embed (?!0s)[0-9.]+s/, 'the timings of the run that did the work');
  assert.deepEqual(readFileSync(summaryFile), before.summary);
  assert.deepEqual(readFileSync(path.join(out, 'report.html')), before.report);
  assert.equal(statSync(summaryFile).mtimeMs, before.mtime);
});

test('a lease left by a dead process is taken over: its pid gone on this host, or its heartbeat old on another', { timeout: 300_000 }, async () => {
  const root = tempDir('lease-stale');
  const file = writeConfigFile(root, demoConfigObject(input, root));
  assert.equal((await cli(['run', '--config', file, '--no-preflight']).exited).code, 0);
  const lease = path.join(root, 'work', 'runs', 'test.lease.json');
  const dead = spawnSync(process.execPath, ['-e', 'process.pid']).pid!; // exited: its pid is free
  const now = new Date().toISOString();
  const holders = [
    { host: hostname(), pid: dead, command: 'megapairs run', startedAt: now, heartbeat: now, token: 'dead-pid' },
    {
      host: 'another-host',
      pid: 1,
      command: 'megapairs run',
      startedAt: now,
      heartbeat: new Date(Date.now() - 3_600_000).toISOString(),
      token: 'old-heartbeat',
    },
  ];
  for (const h of holders) {
    writeFileSync(lease, JSON.stringify(h));
    const run = cli(['run', '--config', file, '--no-preflight']);
    assert.equal((await run.exited).code, 0, h.token);
    assert.ok(!existsSync(lease), h.token);
  }
  // A live holder on another host, heartbeat fresh: refused.
  writeFileSync(lease, JSON.stringify({ ...holders[1], heartbeat: new Date().toISOString(), token: 'live' }));
  const refused = cli(['run', '--config', file, '--no-preflight']);
  assert.equal((await refused.exited).code, 2);
  assert.match(refused.err(), /held by megapairs run \(pid 1 on another-host/);
  assert.equal(JSON.parse(readFileSync(lease, 'utf8')).token, 'live', "the holder's lease is untouched");
  // A distributed run of the same name and work folder does not start beside it either.
  const distributed = cli(['run', '--config', file, '--no-preflight', '--runner', 'distributed']);
  assert.equal((await distributed.exited).code, 2);
  assert.match(distributed.err(), /held by megapairs run \(pid 1 on another-host/);
});

test('the heartbeat renews only a lease still its own: one taken over meanwhile is left to its new holder', async (t) => {
  t.mock.timers.enable({ apis: ['setInterval', 'Date'], now: Date.parse('2026-01-01T00:00:00Z') });
  const root = tempDir('lease-beat');
  const work = new LocalStorage(path.join(root, 'work'));
  const file = path.join(root, 'work', 'runs', 'beat.lease.json');
  const lease = await acquireRunLease(work, 'beat', 'megapairs run');
  const read = () => JSON.parse(readFileSync(file, 'utf8'));
  const mine = read();
  // A beat while it holds the lease renews the heartbeat (writes are real I/O: wait for it).
  t.mock.timers.tick(LEASE_HEARTBEAT_MS);
  await until(() => read().heartbeat !== mine.heartbeat);
  assert.equal(read().token, mine.token);
  // Taken over (as a run finding it stale would); the next beats leave the new holder's lease.
  const other = { ...mine, host: 'another-host', pid: 1, token: 'taken-over', heartbeat: new Date().toISOString() };
  writeFileSync(file, JSON.stringify(other));
  for (let i = 0; i < 3; i++) {
    t.mock.timers.tick(LEASE_HEARTBEAT_MS);
    await new Promise((r) => setTimeout(r, 200)); // the beat's reads (and a write, were it to make one) done
  }
  assert.deepEqual(read(), other);
  await lease.release();
  assert.deepEqual(read(), other, "release leaves the new holder's lease too");
});
