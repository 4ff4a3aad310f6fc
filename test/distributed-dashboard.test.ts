// `megapairs dashboard` as a user starts it: bull-board over a real Redis, its page and its API
// listing the run's queues, with the run's start barrier in the control queue.
import { STAGE_NAMES } from '../src/runner/distributed/queues.ts';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseConfig } from '../src/config/load.ts';
import { connectRedis } from '../src/runner/distributed/connection.ts';
import { enqueueRun } from '../src/runner/distributed/phases.ts';
import { RunQueues } from '../src/runner/distributed/queues.ts';
import { cli, newRun, stop } from './distributed-harness.ts';

test("dashboard serves bull-board for the run's queues: the page and its queues API", { timeout: 120_000 }, async () => {
  const run = newRun('/nonexistent-input', 'dashboard');
  const config = parseConfig(run.obj);
  const connection = await connectRedis(config, 'test');
  const rq = new RunQueues(config, connection);
  await enqueueRun(rq, 'dashboardtest'); // no worker: the start barrier waits in the control queue
  await rq.close();
  await connection.quit();

  const board = cli(['dashboard', '--config', run.file, '--port', '0']);
  try {
    const port = Number((await board.waitFor(/dashboard of run test at http:\/\/127\.0\.0\.1:(\d+)\//))[1]);
    const page = await fetch(`http://127.0.0.1:${port}/`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type')!, /text\/html/);
    const html = await page.text();
    assert.match(html, /id="root"/);
    assert.match(html, /megapairs test/);

    const api = await fetch(`http://127.0.0.1:${port}/api/queues?activeQueue=test.control&status=waiting&page=1`);
    assert.equal(api.status, 200);
    const body = (await api.json()) as { queues: Array<{ name: string; counts: Record<string, number>; jobs: Array<{ id: string }> }> };
    const names = body.queues.map((q) => q.name).sort();
    assert.deepEqual(names, [...STAGE_NAMES, 'control'].map((s) => `test.${s}`).sort());
    const control = body.queues.find((q) => q.name === 'test.control')!;
    assert.equal(control.counts.waiting, 1);
    assert.deepEqual(
      control.jobs.map((j) => j.id),
      ['start.dashboardtest'],
    );
  } finally {
    await stop([board]);
  }
});
