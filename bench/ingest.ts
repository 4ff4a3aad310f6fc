// Ingest from S3 against local disk, and memory against shard count. Puts the sample corpus
// (data/sample, built if missing) into an s3rver bucket, then runs each case in a child process
// of its own, so peak RSS is that case's alone:
//   throughput: the catalog stage (with --embed: catalog, manifest, embed) over every shard, from
//               local disk and from S3;
//   memory:     the same stages from S3 over 1 shard, 4 and all, one unit at a time: peak RSS
//               must not grow with the shard count.
// Usage: npx tsx bench/ingest.ts [--embed] [--concurrency 2] [--shards N]
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { parseConfig } from '../src/config/load.ts';
import { pipelineStages } from '../src/pipeline.ts';
import { createContext } from '../src/runner/context.ts';
import { runLocal } from '../src/runner/local.ts';
import { ProgressReporter } from '../src/runner/progress.ts';
import { buildSampleCorpus } from '../src/sample/openmoji.ts';
import { startS3Server, uploadCorpus } from '../test/s3-server.ts';

interface Case {
  label: string;
  input: string;
  endpoint?: string;
  shards: number;
  concurrency: number;
  embed: boolean;
  cacheDir: string;
}
interface CaseResult {
  images: number;
  seconds: number;
  maxRssMiB: number;
  /** What JavaScript still holds after a full GC: separates retained data from allocator high water. */
  heapAfterGcMiB: number;
}

const { values } = parseArgs({
  options: { child: { type: 'string' }, embed: { type: 'boolean' }, concurrency: { type: 'string', default: '2' }, shards: { type: 'string', default: '0' } },
});

/** In the child: run the stages on a fresh local work folder; report images, seconds, peak RSS. */
async function runCase(c: Case): Promise<CaseResult> {
  const work = await mkdtemp(path.join(tmpdir(), 'megapairs-bench-ingest-'));
  const config = parseConfig({
    run: { name: 'bench-ingest' },
    input: { path: c.input, max_shards: c.shards },
    work: path.join(work, 'work'),
    output: path.join(work, 'output'),
    runner: { concurrency: c.concurrency },
    s3: c.endpoint ? { endpoint: c.endpoint, force_path_style: true } : {},
  });
  const ctx = createContext(config);
  ctx.cacheDir = c.cacheDir; // built-in models are made once, not timed
  const stages = pipelineStages().slice(0, c.embed ? 3 : 1);
  const started = process.hrtime.bigint();
  const reports = await runLocal(ctx, { progress: new ProgressReporter(process.stderr, true), stages });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  await rm(work, { recursive: true, force: true });
  (globalThis as { gc?: () => void }).gc?.();
  return { images: reports[0].items, seconds, maxRssMiB: process.resourceUsage().maxRSS / 1024, heapAfterGcMiB: process.memoryUsage().heapUsed / 1024 / 1024 };
}

function inChild(c: Case): Promise<CaseResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', import.meta.filename, '--child', JSON.stringify(c)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out.trim().split('\n').pop()!) as CaseResult) : reject(new Error(`${c.label}: exit ${code}`))));
  });
}

if (values.child) {
  process.stdout.write(JSON.stringify(await runCase(JSON.parse(values.child) as Case)) + '\n');
  process.exit(0);
}

const root = path.join(import.meta.dirname, '..');
const sample = path.join(root, 'data', 'sample');
const built = await buildSampleCorpus({ outDir: sample });
const shardCount = Number(values.shards) || built.shards;
const server = await startS3Server(['bench']);
try {
  await uploadCorpus(server, sample, 's3://bench/sample/');
  const base = { embed: !!values.embed, cacheDir: path.join(root, 'data', '.cache'), concurrency: Number(values.concurrency) };
  const local: Case = { ...base, label: 'local disk', input: sample, shards: shardCount };
  const s3: Case = { ...base, label: 's3 (s3rver)', input: 's3://bench/sample', endpoint: server.endpoint, shards: shardCount };
  if (values.embed) await inChild({ ...local, label: 'warm-up', shards: 1 }); // builds the built-in models once

  const what = values.embed ? 'catalog+manifest+embed' : 'catalog';
  console.log(`ingest: ${what}, sample corpus (${built.images} images in ${built.shards} shards), node ${process.version}`);
  console.log('case                       shards  images  seconds  images/s  peak RSS MiB  heap after GC MiB');
  const row = (label: string, c: Case, r: CaseResult) =>
    console.log(
      `${label.padEnd(26)} ${String(c.shards).padStart(6)} ${String(r.images).padStart(7)} ${r.seconds.toFixed(2).padStart(8)} ${(r.images / r.seconds).toFixed(0).padStart(9)} ${r.maxRssMiB.toFixed(0).padStart(13)} ${r.heapAfterGcMiB.toFixed(1).padStart(18)}`,
    );
  for (const c of [local, s3]) row(`${c.label}, concurrency ${c.concurrency}`, c, await inChild(c));
  for (const shards of [...new Set([1, 4, shardCount])]) {
    const c = { ...s3, shards, concurrency: 1 };
    row(`s3, one unit at a time`, c, await inChild(c));
  }
} finally {
  await server.stop();
}
