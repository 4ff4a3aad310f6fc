// The whole pipeline on a slice of the demo corpus, read back by DuckDB; then resume and kill.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { before, test } from 'node:test';
import { loadConfig } from '../src/config/load.ts';
import { createContext } from '../src/runner/context.ts';
import { runLocal } from '../src/runner/local.ts';
import { ProgressReporter } from '../src/runner/progress.ts';
import { summarize } from '../src/report/summary.ts';
import { demoConfig, demoConfigObject, duckdb, readJsonl, repoRoot, sampleSlice, tempDir, writeConfigFile } from './helpers.ts';

const quiet = new ProgressReporter(process.stderr, true);
let input: string;
let reference: { root: string; jsonl: string };

before(async () => {
  input = await sampleSlice();
  const root = tempDir('e2e');
  const ctx = createContext(demoConfig(input, root));
  await runLocal(ctx, { progress: quiet });
  reference = { root, jsonl: readFileSync(path.join(root, 'output', 'megapairs.jsonl'), 'utf8') };
});

test('the demo slice becomes triples that DuckDB reads, list columns included', async () => {
  const triples = path.join(reference.root, 'output', 'triples', '*.parquet');
  const types = Object.fromEntries((await duckdb(`describe select * from '${triples}'`)).map((r) => [r.column_name, r.column_type]));
  assert.equal(types.q_text, 'VARCHAR[]');
  assert.equal(types.hns, 'VARCHAR[]');
  assert.equal(types.q_img, 'VARCHAR');
  const rows = await duckdb(`select * from '${triples}'`);
  assert.ok(rows.length >= 30, `only ${rows.length} triples from 150 images`);
  const relations = new Set(rows.map((r) => r.relation));
  assert.deepEqual([...relations].sort(), ['caption', 'visual_pattern', 'visual_semantic']);
  for (const r of rows) {
    const sim = Number(r.similarity);
    assert.ok(sim > 0.8 && sim < 0.96, `similarity ${sim} outside the band`);
    const hns = r.hns as string[];
    assert.equal(hns[0], r.q_img, 'hns[0] is the query image');
    assert.ok(hns.length <= 5 && hns.length >= 2);
    assert.ok(!hns.includes(r.t_img as string), 'the target is not its own negative');
    assert.ok((r.q_text as string[]).length >= 3);
    assert.notEqual(r.q_img, r.t_img);
    assert.match(r.description as string, /^Both images/);
    assert.equal(r.annotator, 'template');
  }
  const [{ n }] = await duckdb(`select count(distinct pair_id) n from '${triples}'`);
  assert.equal(Number(n), rows.length, 'no duplicate pairs');
  // The JSONL export has the released dataset's record shape, one line per triple.
  const jsonl = readJsonl(path.join(reference.root, 'output', 'megapairs.jsonl'));
  assert.equal(jsonl.length, rows.length);
  assert.deepEqual(Object.keys(jsonl[0]), ['q_img', 'q_text', 't_img', 'hns']);
});

test('the summary counts what the artifacts hold', async () => {
  const ctx = createContext(demoConfig(input, reference.root));
  const s = await summarize(ctx, []);
  assert.equal(s.images.catalogued, 150);
  assert.equal(s.embeddings.caption, 150);
  const pairs = Object.values(s.pairs).reduce((a, b) => a + b, 0);
  assert.equal(s.triples, pairs, 'the template annotator annotates every pair');
  assert.deepEqual(s.failures, {});
});

test('a rerun skips every complete unit and changes nothing', async () => {
  const ctx = createContext(demoConfig(input, reference.root));
  const reports = await runLocal(ctx, { progress: quiet });
  for (const r of reports) assert.equal(r.skipped, r.units, `${r.stage} reran ${r.units - r.skipped} units`);
  assert.equal(readFileSync(path.join(reference.root, 'output', 'megapairs.jsonl'), 'utf8'), reference.jsonl);
});

function runCli(configFile: string): { child: ReturnType<typeof spawn>; done: Promise<number> } {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'src/cli/main.ts'), 'run', '--config', configFile], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const done = new Promise<number>((resolve) => child.on('exit', (code, signal) => resolve(code ?? (signal ? -1 : 0))));
  done.then((code) => code > 0 && console.error(stderr));
  return { child, done };
}

test('kill -9 mid-run, rerun: the same triples as an uninterrupted run', async () => {
  const root = tempDir('kill');
  const configFile = writeConfigFile(root, demoConfigObject(input, root));
  const first = runCli(configFile);
  // Kill once the run is inside the embed stage: some units complete, others not.
  // (Embeddings sit under their provenance key: work/embeddings/<key>/mask/.)
  const embeddings = path.join(root, 'work', 'embeddings');
  const masks = () =>
    existsSync(embeddings)
      ? readdirSync(embeddings).flatMap((key) => (existsSync(path.join(embeddings, key, 'mask')) ? readdirSync(path.join(embeddings, key, 'mask')) : []))
      : [];
  const deadline = Date.now() + 120_000;
  while (!masks().some((f) => f.endsWith('.npy'))) {
    assert.ok(Date.now() < deadline, 'the run never reached the embed stage');
    await new Promise((r) => setTimeout(r, 20));
  }
  first.child.kill('SIGKILL');
  assert.equal(await first.done, -1);
  assert.ok(!existsSync(path.join(root, 'output', 'megapairs.jsonl')), 'killed before the end');
  // No partial artifact is ever visible: every .npy present decodes whole.
  const second = runCli(configFile);
  assert.equal(await second.done, 0);
  assert.equal(readFileSync(path.join(root, 'output', 'megapairs.jsonl'), 'utf8'), reference.jsonl);
  const cfg = loadConfig(configFile);
  assert.equal(cfg.run.seed, 7);
});
