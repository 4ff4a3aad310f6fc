// `megapairs export --format hf|webdataset`: read back with independent readers. The hf shards
// by DuckDB (the Image struct columns, the `huggingface` footer metadata, JPEG bytes that sharp
// decodes) with the dataset card's YAML; the webdataset shards by the tar reader. Reruns skip
// complete shards; an image that cannot be decoded is in the ledger and its triples are left out.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cpSync, createReadStream, openSync, readFileSync, readdirSync, statSync, utimesSync, writeSync, closeSync } from 'node:fs';
import path from 'node:path';
import { before, test } from 'node:test';
import sharp from 'sharp';
import { parse } from 'yaml';
import { loadConfig } from '../src/config/load.ts';
import { readTarEntries } from '../src/corpus/tar.ts';
import { exportShards } from '../src/export/export-shards.ts';
import { HF_FEATURES } from '../src/export/hf-parquet.ts';
import { readLedger } from '../src/ledger/ledger.ts';
import { resolveRun } from '../src/provenance/resolve-run.ts';
import { createContext } from '../src/runner/context.ts';
import { runLocal } from '../src/runner/local.ts';
import { ProgressReporter } from '../src/runner/progress.ts';
import { lookupImages } from '../src/stages/catalog-lookup.ts';
import { openStorage } from '../src/storage/open.ts';
import { demoConfigObject, duckdb, repoRoot, sampleSlice, tempDir, writeConfigFile } from './helpers.ts';

interface Triple {
  pair_id: string;
  q_img: string;
  q_text: string[];
  t_img: string;
  hns: string[];
}
let root: string;
let configFile: string;
let triples: Triple[];
const opts = { size: 256, fit: 'contain' as const, quality: 85, concurrency: 4, maxPixels: 40_000_000, batch: 16 };

before(async () => {
  root = tempDir('export-formats');
  cpSync(await sampleSlice(), path.join(root, 'input'), { recursive: true }); // the fault test damages it
  configFile = writeConfigFile(root, demoConfigObject(path.join(root, 'input'), root));
  await runLocal(createContext(loadConfig(configFile)), { progress: new ProgressReporter(process.stderr, true) });
  triples = (await duckdb(`select pair_id, q_img, q_text, t_img, hns from '${path.join(root, 'output', 'triples', '*.parquet')}'`)) as unknown as Triple[];
});

/** `megapairs export ...` as a user runs it; its stdout. */
function megapairs(...args: string[]): string {
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'src', 'cli', 'main.ts'), ...args], { cwd: repoRoot, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

const jpegOf = async (base64: unknown) => sharp(Buffer.from(String(base64), 'base64')).metadata();

test('--format hf: Parquet shards with Image structs and the datasets metadata, and a dataset card', async () => {
  const to = path.join(tempDir('export-hf'), 'hf');
  const printed = megapairs('export', '--config', configFile, '--to', to, '--format', 'hf', '--size', '256');
  assert.match(printed, new RegExp(`triples  ${triples.length}\\n`));
  const shards = readdirSync(path.join(to, 'data')).sort();
  assert.deepEqual(shards, ['train-00000-of-00003.parquet', 'train-00001-of-00003.parquet', 'train-00002-of-00003.parquet']);
  const glob = path.join(to, 'data', '*.parquet');
  const types = Object.fromEntries((await duckdb(`describe select * from '${glob}'`)).map((r) => [r.column_name, r.column_type]));
  assert.deepEqual(types, {
    q_img: 'STRUCT(bytes BLOB, path VARCHAR)',
    q_text: 'VARCHAR[]',
    t_img: 'STRUCT(bytes BLOB, path VARCHAR)',
    hns: 'STRUCT(bytes BLOB, path VARCHAR)[]',
    relation: 'VARCHAR',
    similarity: 'DOUBLE',
    description: 'VARCHAR',
    pair_id: 'VARCHAR',
  });
  const rows = await duckdb(
    `select pair_id, q_img.path qp, t_img.path tp, [h.path for h in hns] hp, q_text, to_base64(q_img.bytes) qb, to_base64(t_img.bytes) tb,
            to_base64(hns[1].bytes) h0, to_base64(hns[2].bytes) h1 from '${glob}'`,
  );
  assert.equal(rows.length, triples.length);
  const stem = (name: string) => name.replace(/\.[^.]*$/, '.jpg');
  const byPair = new Map(triples.map((t) => [t.pair_id, t]));
  for (const r of rows) {
    const t = byPair.get(String(r.pair_id));
    assert.ok(t, `row ${r.pair_id} is a triple of the run`);
    assert.deepEqual([r.qp, r.tp], [stem(t.q_img), stem(t.t_img)]);
    assert.deepEqual(r.q_text, t.q_text);
    assert.deepEqual(r.hp, t.hns.map(stem));
    assert.equal(r.h0, r.qb, 'hns[0] is the query image');
  }
  for (const r of rows.slice(0, 5)) {
    for (const b of [r.qb, r.tb, r.h1]) {
      const m = await jpegOf(b);
      assert.deepEqual([m.format, m.width, m.height], ['jpeg', 256, 256]);
    }
  }
  const [kv] = await duckdb(`select decode(value) v from parquet_kv_metadata('${path.join(to, 'data', shards[0])}') where decode(key) = 'huggingface'`);
  assert.deepEqual(JSON.parse(String(kv.v)), { info: { features: HF_FEATURES } });
  // The card: YAML front matter with the same features, the split's size and its files.
  const card = readFileSync(path.join(to, 'README.md'), 'utf8');
  const yaml = parse(card.split(/^---$/m)[1]) as {
    dataset_info: { features: Array<{ name: string; dtype?: string; sequence?: string }>; splits: Array<{ num_examples: number }> };
    configs: unknown;
  };
  assert.deepEqual(
    yaml.dataset_info.features.map((f) => f.name),
    Object.keys(types),
  );
  assert.deepEqual(
    yaml.dataset_info.features.find((f) => f.name === 'hns'),
    { name: 'hns', sequence: 'image' },
  );
  assert.equal(yaml.dataset_info.splits[0].num_examples, triples.length);
  assert.deepEqual(yaml.configs, [{ config_name: 'default', data_files: [{ split: 'train', path: 'data/train-*' }] }]);
  // A rerun finds every shard complete.
  const again = await exportShards(createContext(loadConfig(configFile)), openStorage(to), 'hf', opts);
  assert.deepEqual([again.written, again.skipped, again.triples], [0, 3, triples.length]);
});

test('--format webdataset: tar shards of query, target and negatives with a JSON of the instructions', async () => {
  const to = path.join(tempDir('export-wds'), 'wds');
  megapairs('export', '--config', configFile, '--to', to, '--format', 'webdataset', '--size', '256');
  const shards = readdirSync(to).sort();
  assert.deepEqual(shards, ['megapairs-000000.tar', 'megapairs-000001.tar', 'megapairs-000002.tar']);
  const samples = new Map<string, Map<string, Buffer>>();
  for (const shard of shards) {
    for await (const e of readTarEntries(createReadStream(path.join(to, shard)), shard)) {
      const dot = e.name.indexOf('.');
      const key = e.name.slice(0, dot);
      if (!samples.has(key)) samples.set(key, new Map());
      samples.get(key)!.set(e.name.slice(dot + 1), e.data);
    }
  }
  assert.equal(samples.size, triples.length);
  const byPair = new Map(triples.map((t) => [t.pair_id, t]));
  let checked = 0;
  for (const [key, members] of samples) {
    const json = JSON.parse(members.get('json')!.toString('utf8')) as Triple & { pair_id: string; relation: string };
    assert.equal(json.pair_id, key);
    const t = byPair.get(key);
    assert.ok(t, `${key} is a triple of the run`);
    assert.deepEqual([json.q_img, json.t_img], [t.q_img, t.t_img]);
    assert.deepEqual(json.q_text, t.q_text);
    assert.deepEqual(json.hns, t.hns);
    const names = [...members.keys()].sort();
    assert.deepEqual(names, ['json', 'query.jpg', 'target.jpg', ...t.hns.map((_, i) => `hn${i}.jpg`)].sort());
    assert.ok(members.get('hn0.jpg')!.equals(members.get('query.jpg')!), 'hn0 is the query image');
    if (checked++ < 5) {
      for (const m of ['query.jpg', 'target.jpg', 'hn1.jpg']) {
        const meta = await sharp(members.get(m)!).metadata();
        assert.deepEqual([meta.format, meta.width], ['jpeg', 256]);
      }
    }
  }
});

test('an image that cannot be decoded is in the ledger, and its triples are left out of the shards', async () => {
  const ctx = createContext(loadConfig(configFile));
  await resolveRun(ctx);
  // Overwrite the bytes of one target image in the corpus with zeros.
  const [{ t_id }] = await duckdb(`select t_id from '${path.join(root, 'output', 'triples', '*.parquet')}' limit 1`);
  const row = (await lookupImages(ctx, [Number(t_id)])).get(Number(t_id))!;
  // In place, keeping the tar's mtime (so its version): the bytes rot, the shard is the one catalogued.
  const tar = path.join(root, 'input', row.tar);
  const { atime, mtimeMs } = statSync(tar);
  const fd = openSync(tar, 'r+');
  writeSync(fd, Buffer.alloc(row.length), 0, row.length, row.offset);
  closeSync(fd);
  utimesSync(tar, atime, mtimeMs / 1000);
  const uses = triples.filter((t) => [t.q_img, t.t_img, ...t.hns].includes(row.image)).length;
  const to = path.join(tempDir('export-hf-fault'), 'hf');
  const report = await exportShards(ctx, openStorage(to), 'hf', opts);
  assert.equal(report.dropped, uses);
  assert.equal(report.triples, triples.length - uses);
  const failures = (await readLedger(ctx)).filter((f) => f.stage === 'export_images' && f.unit.startsWith('hf-'));
  assert.ok(failures.length >= 1, 'in the ledger of each part that uses it');
  for (const f of failures) {
    assert.equal(f.reason, 'export_failed');
    assert.equal(f.item, row.key);
    assert.match(f.where, new RegExp(`${row.tar}:.*@${row.offset}$`));
  }
  const [{ n }] = await duckdb(
    `select count(*) n from '${path.join(to, 'data', '*.parquet')}' where list_contains([h.path for h in hns], '${row.image.replace(/\.[^.]*$/, '.jpg')}')`,
  );
  assert.equal(Number(n), 0);
});
