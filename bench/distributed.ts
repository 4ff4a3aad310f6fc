// The distributed runner against the local runner on the same machine, same corpus (the demo
// sample, data/sample): wall time of each and their ratio (goal: distributed / local <= 1.15), and
// what the distributed run costs Redis per image (commands, bytes in and out, from INFO deltas;
// the Redis server is shared, so run this on a quiet one). The workers are started and warm before
// the clock starts, as they would be in a cluster; `run` is timed from enqueue to summary.
// Usage: npx tsx bench/distributed.ts [--workers 2] [--concurrency 1] [--local-concurrency 2] [--repeat 1] [--limit N]
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
import { runLocal, type StageReport } from '../src/runner/local.ts';
import { ProgressReporter } from '../src/runner/progress.ts';
import { buildSampleCorpus } from '../src/sample/openmoji.ts';

const { values } = parseArgs({
  options: {
    workers: { type: 'string', default: '2' },
    concurrency: { type: 'string', default: '1' },
    'local-concurrency': { type: 'string', default: '2' },
    repeat: { type: 'string', default: '1' },
    limit: { type: 'string', default: '0' },
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
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'src/cli/main.ts'), 'worker', 'all', '--config', file, '--concurrency', values.concurrency!], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d;
      if (out.includes('ready: ')) resolve(child);
    });
    child.on('exit', (code) => reject(new Error(`worker exited ${code}: ${out}`)));
  });
}

async function timeDistributed(): Promise<{ seconds: number; jsonl: string; delta: Info; stages: string }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'megapairs-bench-dist-'));
  const prefix = `mpbench-${process.pid}-${Date.now()}`;
  const obj = base(dir, { runner: { kind: 'distributed', concurrency: Number(values.concurrency) }, redis: { prefix } });
  const file = path.join(dir, 'config.yaml');
  await writeFile(file, stringify(obj));
  const config = parseConfig(obj);
  const redis = new Redis(redisOptions(config));
  const workers = await Promise.all(Array.from({ length: Number(values.workers) }, () => startWorker(file)));
  try {
    const before = await info(redis);
    const started = Date.now();
    const { reports } = await runDistributed(config, { write: () => {}, pollMs: 500 });
    const seconds = (Date.now() - started) / 1000;
    const afterInfo = await info(redis);
    const delta = Object.fromEntries(Object.keys(afterInfo).map((k) => [k, afterInfo[k] - (before[k] ?? 0)]));
    return { seconds, jsonl: await readFile(path.join(dir, 'output', 'megapairs.jsonl'), 'utf8'), delta, stages: stageLine(reports) };
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
for (let i = 0; i < Number(values.repeat); i++) {
  const l = await timeLocal();
  const d = await timeDistributed();
  if (d.jsonl !== l.jsonl) throw new Error('the distributed run wrote different triples from the local run');
  locals.push(l.seconds);
  dists.push(d.seconds);
  images = l.images;
  delta = d.delta;
  console.error(`round ${i + 1}: local ${l.seconds.toFixed(2)}s (${l.stages}), distributed ${d.seconds.toFixed(2)}s (${d.stages})`);
}
const [l, d] = [median(locals), median(dists)];
console.log(`corpus: ${images} images; local: 1 process, concurrency ${values['local-concurrency']}; distributed: ${values.workers} worker processes x concurrency ${values.concurrency}; node ${process.version}`);
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
