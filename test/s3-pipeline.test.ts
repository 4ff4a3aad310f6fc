// End to end on S3: the slice's shards in a bucket, work and output under S3 prefixes, the CLI run
// through a proxy that keeps throwing SlowDown, dropped connections and cut bodies at it. The
// triples must be byte for byte those of the same shards on local disk.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { loadConfig } from '../src/config/load.ts';
import { resolveRun } from '../src/provenance/resolve-run.ts';
import { createContext } from '../src/runner/context.ts';
import { runLocal } from '../src/runner/local.ts';
import { ProgressReporter } from '../src/runner/progress.ts';
import type { RunSummary } from '../src/report/run-summary.ts';
import { summarize } from '../src/report/summary.ts';
import { demoConfig, repoRoot, sampleSlice, tempDir, writeConfigFile } from './helpers.ts';
import { FaultProxy } from './s3-fault-proxy.ts';
import { directStorage, startS3Server, uploadCorpus, type S3TestServer } from './s3-server.ts';

const quiet = new ProgressReporter(process.stderr, true);
let server: S3TestServer;
let proxy: FaultProxy;
let local: { root: string; jsonl: string; summary: RunSummary };

before(async () => {
  server = await startS3Server(['corpus', 'runs']);
  proxy = await FaultProxy.start(server);
  const slice = await sampleSlice();
  await uploadCorpus(server, slice, 's3://corpus/recap-datacomp/'); // directly (no proxy): the faults are for the run
  const root = tempDir('s3-local-ref');
  const ctx = createContext(demoConfig(slice, root));
  await runLocal(ctx, { progress: quiet });
  local = { root, jsonl: readFileSync(path.join(root, 'output', 'megapairs.jsonl'), 'utf8'), summary: await summarize(ctx, []) };
});
after(async () => {
  await proxy?.stop();
  await server?.stop();
});

function runCli(configFile: string, env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'src/cli/main.ts'), 'run', '--config', configFile], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code: code ?? -1, stdout, stderr })));
}

test('input, work and output on S3, under faults: the same triples as on local disk', async (t) => {
  const root = tempDir('s3-run');
  const configFile = writeConfigFile(root, {
    run: { name: 'test', seed: 7 },
    input: { path: 's3://corpus/recap-datacomp' },
    work: 's3://runs/${RUN_ID}/work',
    output: 's3://runs/${RUN_ID}/output',
    index: { shard_size: 1000 },
    s3: { endpoint: '${S3_ENDPOINT}', force_path_style: true, retry_base_ms: 1, retry_max_ms: 50 },
  });
  const isGet = (r: { method: string; url: string }) => r.method === 'GET' && !r.url.includes('list-type');
  const faults = ['slowdown', 'reset', 'internal-error', 'cut-body'] as const;
  proxy.inject({ fault: 'slowdown', every: 13 });
  proxy.inject({ fault: 'reset', every: 17 });
  proxy.inject({ fault: 'internal-error', every: 29 });
  proxy.inject({ fault: 'cut-body', every: 7, cutAfter: 700, match: isGet });
  const env = { RUN_ID: 'r1', S3_ENDPOINT: proxy.endpoint, MEGAPAIRS_CACHE: path.join(root, 'cache') };
  const run = await runCli(configFile, env);
  assert.equal(run.code, 0, run.stderr);
  for (const fault of faults) assert.ok(proxy.faults(fault).length > 0, `the run met ${fault} faults`);
  assert.ok(
    proxy.log.some((r) => r.range),
    'images were fetched with ranged reads',
  );
  t.diagnostic(`${proxy.log.length} requests, faults: ${faults.map((f) => `${f} ${proxy.faults(f).length}`).join(', ')}`);

  const output = directStorage(server, 's3://runs/r1/output');
  assert.equal((await output.read('megapairs.jsonl')).toString('utf8'), local.jsonl);
  const summary = JSON.parse((await output.read('summary.json')).toString('utf8'));
  for (const k of ['images', 'embeddings', 'pairs', 'triples', 'failures'] as const) assert.deepEqual(summary[k], local.summary[k], k);

  // Every artifact is on S3 under the same layout as on disk (its keys are its own: the corpus
  // on S3 has entity tags, so its catalog key differs from the local corpus's).
  const work = directStorage(server, 's3://runs/r1/work');
  const keys: string[] = [];
  for await (const k of work.list('')) keys.push(k);
  process.env.MEGAPAIRS_CACHE = env.MEGAPAIRS_CACHE;
  const s3ctx = createContext(loadConfig(configFile, { ...process.env, ...env }));
  await resolveRun(s3ctx);
  const l = s3ctx.layout;
  for (const expected of [
    l.catalogManifest(),
    l.catalogPart(2),
    l.embeddingPart('caption', 1),
    l.embeddingMask(0),
    l.indexShard('visual_pattern', 0),
    l.pairsPart(0),
    l.annotationsPart(2),
  ]) {
    assert.ok(keys.includes(expected), `${expected} on S3`);
  }

  // A rerun (in process, no faults) finds every unit complete on S3.
  proxy.clear();
  process.env.MEGAPAIRS_CACHE = env.MEGAPAIRS_CACHE;
  const cfg = loadConfig(configFile, { ...process.env, ...env });
  const reports = await runLocal(createContext(cfg), { progress: quiet });
  for (const r of reports) assert.equal(r.skipped, r.units, `${r.stage} reran ${r.units - r.skipped} units`);
  delete process.env.MEGAPAIRS_CACHE;
});
