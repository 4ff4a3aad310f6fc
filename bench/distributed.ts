// The distributed runner against the local runner on the same machine, same corpus (the demo
// sample, data/sample): wall time of each and their ratio (goal: distributed / local <= 1.15), and
// what the distributed run costs Redis per image (commands, bytes in and out, from INFO deltas;
// the Redis server is shared, so run this on a quiet one). The workers are started and warm before
// the clock starts, as they would be in a cluster; `run` is timed from enqueue to summary.
// With --redis-memory, the run's Redis memory: MEMORY USAGE summed over the run's keys, sampled
// during the run (peak, with the unit jobs live then) and after it (what a finished run keeps),
// with INFO used_memory before and after; bytes per unit job, extrapolated to a 20M-image run.
// (The sampling's own commands then count in the command and byte figures.)
// Usage: npx tsx bench/distributed.ts [--workers 2] [--concurrency 1] [--local-concurrency 2] [--repeat 1] [--limit N] [--redis-memory]
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { stringify } from 'yaml';
import { parseConfig } from '../src/config/load.ts';
import { createContext } from '../src/runner/context.ts';
import { redisOptions } from '../src/runner/distributed/connection.ts';
import { runDistributed } from '../src/runner/distributed/follow.ts';
import { total } from '../src/runner/distributed/progress.ts';
import { CONTROL, RunQueues } from '../src/runner/distributed/queues.ts';
import { runMemory } from '../src/runner/distributed/retention.ts';
import { runLocal } from '../src/runner/local.ts';
import type { StageReport } from '../src/core/stage-report.ts';
import { ProgressReporter } from '../src/runner/progress.ts';
import { buildSampleCorpus } from '../src/sample/openmoji.ts';

const { values } = parseArgs({
  options: {
    workers: { type: 'string', default: '2' },
    concurrency: { type: 'string', default: '1' },
    'local-concurrency': { type: 'string', default: '2' },
    repeat: { type: 'string', default: '1' },
    limit: { type: 'string', default: '0' },
    'redis-memory': { type: 'boolean', default: false },
  },
});
const root = path.join(import.meta.dirname, '..');
const sample = path.join(root, 'data', 'sample');
await buildSampleCorpus({ outDir: sample });
const cache = path.join(root, 'data', '.cache'); // built-in models are made once, not timed
process.env.MEGAPAIRS_CACHE = cache;
const limit = Number(values.limit);
const base = (dir: string, extra: Record<string, unknown> = {}) => ({
  run: { name: 'bench' },
  input: { path: sample, max_shards: limit ? Math.ceil(limit / 500) : 0 },
  work: path.join(dir, 'work'),
  output: path.join(dir, 'output'),
  ...extra,
});

const stageLine = (reports: StageReport[]) => reports.map((r) => `${r.stage} ${r.seconds.toFixed(1)}`).join(', ');

async function timeLocal(): Promise<{ seconds: number; jsonl: string; images: number; stages: string }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'megapairs-bench-local-'));
  try {
    const ctx = createContext(parseConfig(base(dir, { runner: { concurrency: Number(values['local-concurrency']) } })));
    const started = Date.now();
    const reports = await runLocal(ctx, { progress: new ProgressReporter(process.stderr, true) });
    const seconds = (Date.now() - started) / 1000;
    const jsonl = await readFile(path.join(dir, 'output', 'megapairs.jsonl'), 'utf8');
    const manifest = JSON.parse(await readFile(path.join(dir, 'work', 'catalog', '_manifest.json'), 'utf8')) as { total: number };
    return { seconds, jsonl, images: manifest.total, stages: stageLine(reports) };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

type Info = Record<string, number>;
async function info(redis: Redis): Promise<Info> {
  const out: Info = {};
  for (const line of (await redis.info('all')).split('\r\n')) {
    const stat = /^(total_commands_processed|total_net_input_bytes|total_net_output_bytes):(\d+)$/.exec(line);
    if (stat) out[stat[1]] = Number(stat[2]);
    const cmd = /^cmdstat_([^:]+):calls=(\d+)/.exec(line);
    if (cmd) out[`cmd:${cmd[1]}`] = Number(cmd[2]);
  }
  return out;
}

function startWorker(file: string): Promise<ChildProcess> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', path.join(root, 'src/cli/main.ts'), 'worker', 'all', '--config', file, '--concurrency', values.concurrency!],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
      if (out.includes('ready: ')) resolve(child);
    });
    child.on('exit', (code) => reject(new Error(`worker exited ${code}: ${out}`)));
  });
}

interface Memory {
  peak: number;
  /** Unit jobs in Redis at the peak. */
  jobsAtPeak: number;
  kept: number;
  keptKeys: number;
  units: number;
  usedBefore: number;
  usedAfter: number;
}

const usedMemory = async (redis: Redis) => Number(/used_memory:(\d+)/.exec(await redis.info('memory'))![1]);

/** Samples the run's Redis memory until `done` resolves. */
async function sampleMemory(rq: RunQueues, done: Promise<unknown>): Promise<{ peak: number; jobsAtPeak: number }> {
  let finished = false;
  void done.finally(() => (finished = true));
  let peak = 0;
  let jobsAtPeak = 0;
  while (!finished) {
    const { bytes } = await runMemory(rq);
    if (bytes > peak) {
      peak = bytes;
      const counts = await Promise.all(
        rq
          .all()
          .filter((q) => q.short !== CONTROL)
          .map((q) => q.queue.getJobCounts()),
      );
      jobsAtPeak = counts.reduce((a, c) => a + total(c), 0);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return { peak, jobsAtPeak };
}

async function timeDistributed(): Promise<{ seconds: number; jsonl: string; delta: Info; stages: string; memory: Memory }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'megapairs-bench-dist-'));
  const prefix = `mpbench-${process.pid}-${Date.now()}`;
  const obj = base(dir, { runner: { kind: 'distributed', concurrency: Number(values.concurrency) }, redis: { prefix } });
  const file = path.join(dir, 'config.yaml');
  await writeFile(file, stringify(obj));
  const config = parseConfig(obj);
  const redis = new Redis(redisOptions(config));
  const workers = await Promise.all(Array.from({ length: Number(values.workers) }, () => startWorker(file)));
  try {
    const rq = new RunQueues(config, redis);
    const usedBefore = await usedMemory(redis);
    const before = await info(redis);
    const started = Date.now();
    const following = runDistributed(createContext(config), { write: () => {}, pollMs: 500 });
    const sampled = values['redis-memory'] ? sampleMemory(rq, following) : Promise.resolve({ peak: 0, jobsAtPeak: 0 });
    const { reports } = await following;
    const seconds = (Date.now() - started) / 1000;
    const afterInfo = await info(redis);
    const { peak, jobsAtPeak } = await sampled;
    const kept = await runMemory(rq);
    const memory: Memory = {
      peak,
      jobsAtPeak,
      kept: kept.bytes,
      keptKeys: kept.keys,
      units: reports.reduce((a, r) => a + r.units, 0),
      usedBefore,
      usedAfter: await usedMemory(redis),
    };
    await rq.close();
    const delta = Object.fromEntries(Object.keys(afterInfo).map((k) => [k, afterInfo[k] - (before[k] ?? 0)]));
    return { seconds, jsonl: await readFile(path.join(dir, 'output', 'megapairs.jsonl'), 'utf8'), delta, stages: stageLine(reports), memory };
  } finally {
    for (const w of workers) w.kill('SIGTERM');
    await Promise.all(workers.map((w) => new Promise((r) => (w.exitCode !== null ? r(null) : w.on('exit', r)))));
    for (let cursor = '0'; ; ) {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      if (keys.length) await redis.unlink(...keys);
      if ((cursor = next) === '0') break;
    }
    await redis.quit();
    await rm(dir, { recursive: true, force: true });
  }
}

const median = (xs: number[]) => xs.slice().sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
const locals: number[] = [];
const dists: number[] = [];
let images = 0;
let delta: Info = {};
let memory: Memory | undefined;
for (let i = 0; i < Number(values.repeat); i++) {
  const l = await timeLocal();
  const d = await timeDistributed();
  if (d.jsonl !== l.jsonl) throw new Error('the distributed run wrote different triples from the local run');
  locals.push(l.seconds);
  dists.push(d.seconds);
  images = l.images;
  delta = d.delta;
  memory = d.memory;
  console.error(`round ${i + 1}: local ${l.seconds.toFixed(2)}s (${l.stages}), distributed ${d.seconds.toFixed(2)}s (${d.stages})`);
}
const [l, d] = [median(locals), median(dists)];
console.log(
  `corpus: ${images} images; local: 1 process, concurrency ${values['local-concurrency']}; distributed: ${values.workers} worker processes x concurrency ${values.concurrency}; node ${process.version}`,
);
console.log(`wall time (median of ${locals.length}): local ${l.toFixed(2)}s, distributed ${d.toFixed(2)}s, ratio ${(d / l).toFixed(3)} (goal <= 1.15)`);
console.log('same megapairs.jsonl bytes: yes');
const per = (k: string) => (delta[k] / images).toFixed(2);
console.log(
  `redis, last distributed run: ${delta.total_commands_processed} commands (${per('total_commands_processed')}/image), ` +
    `${delta.total_net_input_bytes} bytes in (${per('total_net_input_bytes')}/image), ${delta.total_net_output_bytes} bytes out (${per('total_net_output_bytes')}/image)`,
);
const top = Object.entries(delta)
  .filter(([k, v]) => k.startsWith('cmd:') && v > 0)
  .sort((a, b) => b[1] - a[1])
  .slice(0, 8);
console.log(`top commands: ${top.map(([k, v]) => `${k.slice(4)} ${v}`).join(', ')}`);

if (memory && values['redis-memory']) {
  const m = memory;
  const perUnit = (m.peak - m.kept) / Math.max(1, m.jobsAtPeak);
  // 20M images in img2dataset's 10k-image shards: 2000 parts; units per part: catalog, embed, mine,
  // annotate, emit; 20 index shards (1M vectors each) per encoder; the manifest and the export.
  const parts = 2000;
  const units20m = parts * 5 + 20 * 3 + 2;
  const livePeak20m = parts * 3 + 1; // the last phase: mine, annotate, emit per part, and the export
  const mb = (b: number) => `${(b / 1e6).toFixed(2)} MB`;
  console.log(
    `redis memory of the run (MEMORY USAGE over its keys): peak ${m.peak} bytes with ${m.jobsAtPeak} unit jobs live, ` +
      `kept after the run ${m.kept} bytes in ${m.keptKeys} keys (control queue, stage reports); ${perUnit.toFixed(0)} bytes per live unit job; ` +
      `INFO used_memory ${m.usedBefore} -> ${m.usedAfter} (shared server: indicative)`,
  );
  console.log(
    `extrapolated to 20M images (${parts} parts, ${units20m} units): peak ~${mb(m.kept + perUnit * livePeak20m)} (the last phase's ${livePeak20m} jobs), ` +
      `kept after ~${mb(m.kept)}; without trimming finished phases every job would stay: ~${mb(m.kept + perUnit * units20m)} plus each queue's event stream`,
  );
}
