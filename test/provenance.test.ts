// Provenance: artifacts keyed by what decides them. A config change recomputes exactly the stages
// it decides and those after them, never reading an old artifact under a new key; an unchanged
// config recomputes nothing; --dry-run says so without doing work; gc removes other keys.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { before, test } from 'node:test';
import { decodeNpy } from '../src/artifacts/npy.ts';
import { parseConfig } from '../src/config/load.ts';
import { ENCODER_NAMES } from '../src/config/schema.ts';
import { createContext } from '../src/runner/context.ts';
import { runLocal } from '../src/runner/local.ts';
import { resolveRun } from '../src/provenance/resolve-run.ts';
import type { StageReport } from '../src/core/stage-report.ts';
import { ProgressReporter } from '../src/runner/progress.ts';
import { summarize } from '../src/report/summary.ts';
import { toHalfArray } from '../src/util/float16.ts';
import { demoConfigObject, duckdb, repoRoot, sampleSlice, tempDir, writeConfigFile } from './helpers.ts';

const quiet = new ProgressReporter(process.stderr, true);
let input: string;

before(async () => {
  input = await sampleSlice();
});

function files(dir: string): Map<string, number> {
  const out = new Map<string, number>();
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.set(path.relative(dir, p), statSync(p).mtimeMs);
    }
  };
  if (existsSync(dir)) walk(dir);
  return out;
}

async function run(obj: Record<string, unknown>): Promise<Map<string, StageReport>> {
  const ctx = createContext(parseConfig(obj));
  return new Map((await runLocal(ctx, { progress: quiet })).map((r) => [r.stage, r]));
}

const statuses = (reports: Map<string, StageReport>) => Object.fromEntries([...reports].map(([s, r]) => [s, r.status]));
const ALL = ['catalog', 'manifest', 'embed', 'partition', 'assign', 'route', 'index', 'search', 'recall', 'mine', 'select', 'annotate', 'emit', 'jsonl'];
// The demo's shards are id ranges: the partition, assign and route stages have nothing to do.
const expect = (reused: string[]) =>
  Object.fromEntries(ALL.map((s) => [s, ['partition', 'assign', 'route'].includes(s) ? 'not needed' : reused.includes(s) ? 'reused' : 'computed']));

test('mine.band changed: mine and what follows recompute, catalog, embed and index are reused; every triple is in the new band', {
  timeout: 240_000,
}, async () => {
  const root = tempDir('prov-band');
  const base = demoConfigObject(input, root);
  const first = await run(base);
  assert.deepEqual(statuses(first), expect([]));

  const before = files(path.join(root, 'work'));
  const again = await run(base);
  assert.deepEqual(statuses(again), expect(ALL), 'an unchanged config recomputes nothing');
  assert.match(again.get('mine')!.reason!, /unchanged/);
  const after = files(path.join(root, 'work'));
  for (const [f, t] of before) if (!f.startsWith('runs/')) assert.equal(after.get(f), t, `${f} was rewritten`);

  const banded = { ...base, mine: { ...(base.mine as object), band: [0.9, 0.96] } };
  const changed = await run(banded);
  // The searches depend on the band's top only (near-duplicates): a new lower bound reuses them.
  assert.deepEqual(statuses(changed), expect(['catalog', 'manifest', 'embed', 'index', 'search']));
  assert.match(changed.get('mine')!.reason!, /mine\.band: \[0\.8,0\.96\] -> \[0\.9,0\.96\]/);
  assert.match(changed.get('annotate')!.reason!, /select changed/);
  assert.notEqual(changed.get('mine')!.key, first.get('mine')!.key);
  assert.equal(changed.get('index')!.key, first.get('index')!.key);

  const rows = await duckdb(`select similarity from '${path.join(root, 'output', 'triples', '*.parquet')}'`);
  assert.ok(rows.length > 0);
  for (const r of rows) assert.ok(Number(r.similarity) > 0.9 && Number(r.similarity) < 0.96, `similarity ${r.similarity} outside the new band`);
  const ctx = createContext(parseConfig(banded));
  const summary = await summarize(ctx, await runLocal(ctx, { progress: quiet }));
  assert.equal(summary.triples, rows.length, 'the summary agrees with the files');
  assert.equal(summary.stages.mine.status, 'reused');
  assert.equal(summary.pairs.visual_semantic + summary.pairs.visual_pattern + summary.pairs.caption, rows.length);

  // Back to the first config: its work artifacts are still there under their keys; only the
  // product, which the other config overwrote, is written again from them.
  const back = await run(base);
  assert.deepEqual(statuses(back), expect(ALL.filter((s) => s !== 'emit' && s !== 'jsonl')));
  const rowsBack = await duckdb(`select count(*)::int as n from '${path.join(root, 'output', 'triples', '*.parquet')}'`);
  assert.equal(rowsBack[0].n, first.get('emit')!.items, "the output is the first config's again");
});

test("embed.dtype float16: embed and what follows recompute; the vectors are stored '<f2', the run completes, DuckDB reads its triples", {
  timeout: 240_000,
}, async (t) => {
  const root = tempDir('prov-f16');
  const base = demoConfigObject(input, root);
  const ctx32 = createContext(parseConfig(base));
  const summary32 = await summarize(ctx32, await runLocal(ctx32, { progress: quiet }));
  const half = { ...base, embed: { dtype: 'float16' } };
  const ctx16 = createContext(parseConfig(half));
  const reports = await runLocal(ctx16, { progress: quiet });
  const changed = new Map(reports.map((r) => [r.stage, r]));
  assert.deepEqual(statuses(changed), expect(['catalog', 'manifest']));
  assert.match(changed.get('embed')!.reason!, /embed\.dtype: \(unset\) -> "float16"/);
  assert.match(changed.get('index')!.reason!, /embed changed/);

  for (const e of ENCODER_NAMES) {
    for (const n of [0, 1, 2]) {
      const f32 = readFileSync(path.join(root, 'work', ctx32.layout.embeddingPart(e, n)));
      const f16 = readFileSync(path.join(root, 'work', ctx16.layout.embeddingPart(e, n)));
      const header = f16.subarray(10, f16.readUInt16LE(8) + 10).toString('latin1');
      assert.match(header, /'descr': '<f2'/, `${e} part ${n}`);
      const [a, b] = [decodeNpy(f32), decodeNpy(f16)];
      assert.deepEqual(b.shape, a.shape);
      assert.equal(f32.length - f16.length, 2 * a.data.length, `${e} part ${n}: half the data bytes`);
      // The same vectors, rounded once: float16 is the float32 run's vectors to nearest even.
      assert.deepEqual(b.data, toHalfArray(a.data as Float32Array), `${e} part ${n}`);
    }
  }

  const summary16 = await summarize(ctx16, reports);
  assert.equal(summary16.outcome.exit_code, 0, summary16.outcome.message);
  const rows = await duckdb(`select q_img, t_img, hns, relation, similarity from '${path.join(root, 'output', 'triples', '*.parquet')}'`);
  assert.ok(rows.length > 0);
  assert.equal(summary16.triples, rows.length);
  for (const r of rows) assert.ok(Number(r.similarity) > 0.8 && Number(r.similarity) < 0.96);
  // Recall per space (index against exact search over the same stored vectors), both dtypes.
  for (const e of ENCODER_NAMES) {
    const [r32, r16] = [summary32.mining!.spaces[e].recall, summary16.mining!.spaces[e].recall];
    t.diagnostic(
      `${e}: recall@${r32.k} float32 ${r32.at_k.toFixed(4)} (in band ${r32.in_band.toFixed(4)}), float16 ${r16.at_k.toFixed(4)} (in band ${r16.in_band.toFixed(4)})`,
    );
    assert.ok(r16.at_k >= r32.at_k - 0.02, `${e}: recall ${r16.at_k} with float16, ${r32.at_k} with float32`);
  }
  t.diagnostic(`triples: float32 ${summary32.triples}, float16 ${summary16.triples}`);
});

test('input.caption changed: everything from the catalog on recomputes, with the new captions', { timeout: 240_000 }, async () => {
  const root = tempDir('prov-caption');
  const base = demoConfigObject(input, root);
  await run(base);
  const fromParquet = { ...base, input: { ...(base.input as object), caption: { source: 'parquet', column: 'caption' } } };
  const changed = await run(fromParquet);
  assert.deepEqual(statuses(changed), expect([]));
  assert.match(changed.get('catalog')!.reason!, /input\.caption\.(source|column)/);
  const rows = await duckdb(`select q_caption from '${path.join(root, 'output', 'triples', '*.parquet')}'`);
  const parquetCaptions = await duckdb(`select caption from '${path.join(input, '*.parquet')}'`);
  const allowed = new Set(parquetCaptions.map((r) => String(r.caption).replace(/\s+/g, ' ').trim()));
  for (const r of rows) assert.ok(allowed.has(String(r.q_caption)), `caption "${r.q_caption}" is not the parquet's`);
});

test('--dry-run prints the plan and writes nothing; gc removes the keys no config uses', { timeout: 240_000 }, async () => {
  const root = tempDir('prov-dry');
  const base = demoConfigObject(input, root);
  const file = writeConfigFile(root, base);
  const cli = (...args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'src/cli/main.ts'), ...args], { encoding: 'utf8' });

  const fresh = cli('run', '--config', file, '--dry-run');
  assert.equal(fresh.status, 0, fresh.stderr);
  assert.match(fresh.stdout, /catalog +[0-9a-f]{12} +compute 3 units/);
  assert.match(fresh.stdout, /embed +[0-9a-f]{12} +compute /);
  assert.ok(!existsSync(path.join(root, 'work')) || files(path.join(root, 'work')).size === 0, 'a dry run writes nothing');

  await run(base);
  const k7 = { ...base, mine: { ...(base.mine as object), k: 7 } };
  const k7file = path.join(root, 'k7.yaml');
  (await import('node:fs')).writeFileSync(k7file, (await import('yaml')).stringify(k7));
  const plan = cli('run', '--config', k7file, '--dry-run');
  assert.equal(plan.status, 0, plan.stderr);
  assert.match(plan.stdout, /index +[0-9a-f]{12} +reuse/);
  assert.match(plan.stdout, /search +[0-9a-f]{12} +compute \d+ units? +mine\.k: 20 -> 7/);
  assert.match(plan.stdout, /\n {2}mine +[0-9a-f]{12} +compute +mine\.k: 20 -> 7/);
  await run(k7);

  const pairsKeys = () => readdirSync(path.join(root, 'work', 'pairs'));
  assert.equal(pairsKeys().length, 2);
  const dry = cli('gc', '--config', k7file, '--dry-run');
  assert.equal(dry.status, 0, dry.stderr);
  assert.match(dry.stdout, /would remove .*pairs\/[0-9a-f]{12}\//);
  assert.equal(pairsKeys().length, 2, 'gc --dry-run removes nothing');
  const gc = cli('gc', '--config', k7file);
  assert.equal(gc.status, 0, gc.stderr);
  assert.equal(pairsKeys().length, 1);
  const after = cli('run', '--config', k7file, '--dry-run');
  assert.doesNotMatch(after.stdout, /compute/, 'the kept config still has every artifact');
  assert.match(cli('run', '--config', file, '--dry-run').stdout, /search +[0-9a-f]{12} +compute \d+ units?/, 'the removed config must recompute');
});

test('settings that pace the work or feed only recall decide nothing else: query_parts_per_unit and recall_queries keep the mining keys', async () => {
  const root = tempDir('prov-pacing');
  const keysOf = async (mine: Record<string, unknown>) => {
    const ctx = createContext(parseConfig(demoConfigObject(input, root, { mine })));
    return (await resolveRun(ctx)).provenance;
  };
  const base = await keysOf({});
  const paced = await keysOf({ query_parts_per_unit: 1 });
  const sampled = await keysOf({ recall_queries: 50 });
  for (const stage of ['search', 'mine', 'select', 'annotate', 'emit']) {
    assert.equal(paced[stage].key, base[stage].key, `query_parts_per_unit changes ${stage}`);
    assert.equal(sampled[stage].key, base[stage].key, `recall_queries changes ${stage}`);
  }
  assert.notEqual(sampled.recall.key, base.recall.key, 'recall_queries decides recall');
  assert.notEqual((await keysOf({ targets_per_space: 2 })).mine.key, base.mine.key, 'a mining setting decides mine');
});
