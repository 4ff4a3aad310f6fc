import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createReadStream } from 'node:fs';
import { mkdtemp, open, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { DuckDBInstance } from '@duckdb/node-api';
import { readTarEntries, type TarEntry } from '../src/corpus/tar.ts';
import { buildSampleCorpus, describeEmoji } from '../src/sample/openmoji.ts';

const SLICE = { limit: 40, shardSize: 16 }; // 3 shards: 16 + 16 + 8

let root: string;
let corpus: string;
const progress: Array<[number, number]> = [];

before(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'megapairs-sample-'));
  corpus = path.join(root, 'a');
  const result = await buildSampleCorpus({ outDir: corpus, ...SLICE, onProgress: (done, total) => progress.push([done, total]) });
  assert.deepEqual(result, { shards: 3, images: 40, skipped: 0 });
});

after(async () => {
  await rm(root, { recursive: true, force: true });
});

async function entriesOf(tarFile: string): Promise<TarEntry[]> {
  const entries: TarEntry[] = [];
  for await (const entry of readTarEntries(createReadStream(tarFile, { highWaterMark: 4096 }), tarFile)) entries.push(entry);
  return entries;
}

async function rangedRead(file: string, offset: number, length: number): Promise<Buffer> {
  const fh = await open(file, 'r');
  try {
    const buf = Buffer.alloc(length);
    const { bytesRead } = await fh.read(buf, 0, length, offset);
    assert.equal(bytesRead, length);
    return buf;
  } finally {
    await fh.close();
  }
}

test('the img2dataset layout: shard files, a marker, progress for every image', async () => {
  assert.deepEqual((await readdir(corpus)).sort(), [
    '00000.parquet',
    '00000.tar',
    '00000_stats.json',
    '00001.parquet',
    '00001.tar',
    '00001_stats.json',
    '00002.parquet',
    '00002.tar',
    '00002_stats.json',
    '_SUCCESS',
  ]);
  assert.equal(progress.length, 40);
  assert.deepEqual(progress.at(-1), [40, 40]);

  const counts = [16, 16, 8];
  for (const [shard, count] of counts.entries()) {
    const stats = JSON.parse(await readFile(path.join(corpus, `0000${shard}_stats.json`), 'utf8'));
    assert.equal(stats.count, count);
    assert.equal(stats.successes, count);
    assert.equal(stats.failed_to_download, 0);
    assert.equal(stats.failed_to_resize, 0);
    assert.equal(typeof stats.duration, 'number');
    assert.deepEqual(stats.status_dict, { success: count });
  }
});

test('tar members: png/txt/json per key, ranged reads give the member, PNGs decode at the right size', async () => {
  for (const shard of [0, 1, 2]) {
    const tarFile = path.join(corpus, `0000${shard}.tar`);
    const entries = await entriesOf(tarFile);
    const count = shard < 2 ? 16 : 8;
    assert.equal(entries.length, count * 3);
    for (let i = 0; i < count; i++) {
      const key = `0000${shard}${String(i).padStart(4, '0')}`;
      const [png, txt, json] = entries.slice(i * 3, i * 3 + 3);
      assert.deepEqual([png.name, txt.name, json.name], [`${key}.png`, `${key}.txt`, `${key}.json`]);
      for (const entry of [png, txt, json]) assert.deepEqual(await rangedRead(tarFile, entry.dataOffset, entry.size), entry.data);

      const image = await sharp(await rangedRead(tarFile, png.dataOffset, png.size)).metadata();
      assert.deepEqual([image.format, image.width, image.height, image.hasAlpha], ['png', 128, 128, true]);

      const meta = JSON.parse(json.data.toString('utf8'));
      assert.equal(meta.key, key);
      assert.equal(meta.status, 'success');
      assert.match(meta.url, /^openmoji:[0-9A-F-]+$/);
      assert.ok(meta.caption.length > 0);
      assert.equal(txt.data.toString('utf8'), meta.re_caption);
      assert.ok(meta.re_caption.startsWith(meta.caption.charAt(0).toUpperCase()));
      assert.match(meta.sha256, /^[0-9a-f]{64}$/);
      assert.deepEqual([meta.width, meta.height, meta.original_width, meta.original_height], [128, 128, 72, 72]);
    }
  }
});

test('the parquet, read by DuckDB, matches the tar members', async () => {
  const db = await DuckDBInstance.create(':memory:');
  const connection = await db.connect();
  try {
    const glob = path.join(corpus, '*.parquet').replaceAll("'", "''");
    const reader = await connection.runAndReadAll(`SELECT * FROM read_parquet('${glob}') ORDER BY key`);
    const rows = reader.getRowObjectsJson();
    assert.equal(rows.length, 40);

    const fromTars: Record<string, unknown>[] = [];
    for (const shard of [0, 1, 2]) {
      for (const entry of await entriesOf(path.join(corpus, `0000${shard}.tar`))) {
        if (entry.name.endsWith('.json')) fromTars.push(JSON.parse(entry.data.toString('utf8')));
      }
    }
    assert.deepEqual(rows, fromTars);
    assert.deepEqual(Object.keys(rows[0]), [
      'url',
      'caption',
      're_caption',
      'key',
      'status',
      'error_message',
      'width',
      'height',
      'original_width',
      'original_height',
      'exif',
      'sha256',
    ]);
    assert.equal(rows[0].url, 'openmoji:1F600');
    assert.equal(rows[0].caption, 'grinning face');
    assert.equal(rows[0].error_message, null);
  } finally {
    connection.closeSync();
    db.closeSync();
  }
});

test('two builds give identical bytes; a rerun on a complete folder does nothing', async () => {
  const other = path.join(root, 'b');
  const result = await buildSampleCorpus({ outDir: other, ...SLICE, concurrency: 1 });
  assert.deepEqual(result, { shards: 3, images: 40, skipped: 0 });
  const files = (await readdir(corpus)).sort();
  assert.deepEqual((await readdir(other)).sort(), files);
  for (const file of files) assert.ok((await readFile(path.join(corpus, file))).equals(await readFile(path.join(other, file))), `${file} identical`);

  const before = await Promise.all(files.map(async (f) => (await stat(path.join(other, f))).mtimeMs));
  let calls = 0;
  assert.deepEqual(await buildSampleCorpus({ outDir: other, ...SLICE, onProgress: () => calls++ }), result);
  assert.equal(calls, 0);
  const afterRerun = await Promise.all(files.map(async (f) => (await stat(path.join(other, f))).mtimeMs));
  assert.deepEqual(afterRerun, before);
});

test('different options rebuild, and shards of the old build do not linger', async () => {
  const other = path.join(root, 'c');
  await buildSampleCorpus({ outDir: other, ...SLICE });
  const result = await buildSampleCorpus({ outDir: other, limit: 20, shardSize: 16, imageSize: 32 });
  assert.deepEqual(result, { shards: 2, images: 20, skipped: 0 });
  const files = (await readdir(other)).sort();
  assert.deepEqual(files, ['00000.parquet', '00000.tar', '00000_stats.json', '00001.parquet', '00001.tar', '00001_stats.json', '_SUCCESS']);
  const [png] = await entriesOf(path.join(other, '00001.tar'));
  assert.equal(png.name, '000010000.png');
  const meta = await sharp(png.data).metadata();
  assert.deepEqual([meta.width, meta.height], [32, 32]);
});

test('captions read as sentences and are empty only when the source is', () => {
  assert.equal(
    describeEmoji({ annotation: 'goldfish', group: 'extras-openmoji', subgroups: 'animals-nature', tags: '', openmoji_tags: 'goldfish, fish, water' }),
    'Goldfish; an emoji in OpenMoji extras (animals & nature); tagged fish, water.',
  );
  assert.equal(describeEmoji({ annotation: '', group: '', subgroups: '', tags: '', openmoji_tags: '' }), '');
});
