// Queue data is data, never a path: jobs added to a run's queues by someone else (BullMQ's
// Queue.add, as the dashboard's "add job" or anyone with Redis does) with a path-traversal unit
// number, a tar outside the input, a planned unit under another job id, or a barrier out of turn
// are refused by the worker: a log line, a job_refused ledger entry, and nothing written anywhere
// else. The run's own jobs run as before.
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { before, test } from 'node:test';
import { Job, Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { parseConfig } from '../src/config/load.ts';
import { createContext } from '../src/runner/context.ts';
import { summarize } from '../src/report/summary.ts';
import { keysOf } from '../src/provenance/stage-keys.ts';
import { JobCheck } from '../src/runner/distributed/job-check.ts';
import { barrierJobId, type Planned, RunQueues } from '../src/runner/distributed/queues.ts';
import { cli, newRun, stop, workers } from './distributed-harness.ts';
import { filesUnder, sampleSlice, tempDir } from './helpers.ts';

process.env.MEGAPAIRS_CACHE = tempDir('inject-cache');
let input: string;
before(async () => {
  input = await sampleSlice();
});

test('injected jobs are refused with a log line and a ledger entry, and write nothing', { timeout: 300_000 }, async () => {
  const run = newRun(input, 'inject');
  const [worker] = await workers(run.file, 1);
  const redis = new Redis({ host: '127.0.0.1', port: 6379, maxRetriesPerRequest: null });
  const queues: Queue[] = [];
  try {
    assert.equal((await cli(['run', '--config', run.file]).exited).code, 0);
    const published = JSON.parse((await redis.get(`${run.prefix}:test:published-run`))!);
    const key: string = published.key;
    // A real tar outside the input, for a unit that names it.
    mkdirSync(path.join(run.root, 'outside'));
    copyFileSync(path.join(input, '00000.tar'), path.join(run.root, 'outside', '00000.tar'));
    const before = filesUnder(run.root).sort();

    const queue = (stage: string) => {
      const q = new Queue(`test.${stage}`, { connection: redis, prefix: run.prefix });
      queues.push(q);
      return q;
    };
    const catalog = queue('catalog');
    const injected = [
      await catalog.add('catalog', {
        run: key,
        stage: 'catalog',
        unit: { number: '9/../../../../escape/PWNED', tar: '../../x.tar', parquet: '../../x.parquet' },
      }),
      await catalog.add('catalog', { run: key, stage: 'catalog', unit: { number: 9, tar: '../outside/00000.tar', parquet: '../outside/00000.parquet' } }),
      // A planned unit, but not under its own job id (an id made to be a path).
      await catalog.add(
        'catalog',
        { run: key, stage: 'catalog', unit: { number: 0, tar: '00000.tar', parquet: '00000.parquet' } },
        { jobId: 'catalog.x.../../../../escape/ID' },
      ),
      // A unit of another stage in this queue.
      await catalog.add('embed', { run: key, stage: 'embed', unit: 0 }),
      await queue('control').add('after.embed', { run: key, barrier: '../../escape' }),
    ];
    const results = await Promise.all(
      injected.map(async (job) => {
        for (;;) {
          const state = await job.getState();
          if (state === 'completed' || state === 'failed') return (await queues.find((q) => q.name === job.queueName)!.getJob(job.id!))!;
          await new Promise((r) => setTimeout(r, 100));
        }
      }),
    );
    for (const job of results) assert.match(String(job.returnvalue?.refused), /^refused: /, `${job.queueName} ${job.id}`);
    for (const job of injected) assert.match(worker.out(), new RegExp(`refused test\\.\\w+ job "?${job.id!.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}`));

    // Nothing escaped: no new file but the refusals' ledger entries.
    assert.ok(!existsSync(path.join(run.root, 'escape')), 'nothing outside the run');
    const added = filesUnder(run.root)
      .sort()
      .filter((f) => !before.includes(f));
    assert.equal(added.length, injected.length, added.join('\n'));
    for (const f of added) {
      assert.match(path.relative(run.root, f), /^work\/failures\/(catalog|control)\/[0-9a-f]{12}\/refused-[0-9a-f]{16}\.jsonl$/);
      const [entry] = readFileSync(f, 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      assert.equal(entry.reason, 'job_refused');
      assert.equal(entry.retryable, false);
    }
    // The run's summary from its files: the refusals are listed, not counted as images or items.
    const summary = await summarize(createContext(parseConfig(run.obj)), []);
    assert.equal(summary.images.refused, 0);
    assert.equal(summary.failures['catalog/job_refused'], 4);
    assert.equal(summary.failures['control/job_refused'], 1);
    assert.equal(summary.outcome.exit_code, 0, summary.outcome.message);

    // A barrier under its own id, in turn, whose `planned` is not its phase's: its stage reports
    // and the queues it trims come from that payload, so the check refuses it (a Job object made
    // here, as a job added in the moment its phase's barrier is active would be).
    const ctx = createContext(parseConfig(run.obj));
    ctx.keys = keysOf(published.stages);
    const rq = new RunQueues(ctx.config, redis);
    const lines: string[] = [];
    const check = new JobCheck(rq, (l) => lines.push(l));
    const barrier = (planned: unknown) =>
      new Job(queue('control'), 'after.embed', { run: key, barrier: 'after.embed', planned: planned as Planned }, {}, barrierJobId('after.embed', key));
    assert.equal(await check.barrier(ctx, key, barrier({ embed: { units: 1, skipped: 0 } })), undefined, lines.join('\n'));
    for (const planned of [
      undefined,
      { control: { units: 1, skipped: 0 } },
      { embed: { units: 1, skipped: 0 }, catalog: { units: 1, skipped: 0 } },
      { embed: { units: -1, skipped: 0 } },
      { embed: { units: 1, skipped: 2 } },
      [1],
    ])
      assert.match(
        String(await check.barrier(ctx, key, barrier(planned))),
        /^refused: its planned units|^refused: it carries no planned units/,
        JSON.stringify(planned),
      );
    await rq.close();
  } finally {
    for (const q of queues) await q.close();
    await redis.quit();
    await stop([worker]);
  }
});
