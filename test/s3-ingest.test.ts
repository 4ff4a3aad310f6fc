// Ingest from an S3 prefix of img2dataset output: metadata parquet as pyarrow writes it (here by
// DuckDB: dictionary pages, ZSTD or SNAPPY), failed downloads counted in the ledger, and each input
// fault (a truncated tar object, a corrupt parquet object, a sample without an image, an object
// gone missing) in the ledger with its shard and key while the rest goes on.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { DeleteObjectCommand } from '@aws-sdk/client-s3';
import { parquetMetadata } from 'hyparquet';
import { readParquet } from '../src/artifacts/parquet.ts';
import { readLedger } from '../src/ledger/ledger.ts';
import { pipelineStages } from '../src/pipeline.ts';
import { resolveRun } from '../src/provenance/resolve-run.ts';
import { createContext } from '../src/runner/context.ts';
import { runLocal } from '../src/runner/local.ts';
import { ProgressReporter } from '../src/runner/progress.ts';
import { summarize } from '../src/report/summary.ts';
import { catalogSchema, type CatalogRow } from '../src/artifacts/tables.ts';
import { openStorage } from '../src/storage/open.ts';
import { s3Client } from '../src/storage/s3-client.ts';
import type { Storage } from '../src/storage/storage.ts';
import { demoConfig, duckdb, membersOf, sliceSamples, tarOf, tempDir, type SliceSample } from './helpers.ts';
import { FaultProxy } from './s3-fault-proxy.ts';
import { startS3Server, type S3TestServer } from './s3-server.ts';

const quiet = new ProgressReporter(process.stderr, true);
let server: S3TestServer;
type Sample = SliceSample;
let samples: Sample[];

before(async () => {
  // Runs whose work is on S3 keep their local cache here, not in ~/.cache.
  process.env.MEGAPAIRS_CACHE = tempDir('ingest-cache');
  server = await startS3Server(['ingest']);
  samples = await sliceSamples(['00000.tar', '00001.tar']);
});
after(async () => {
  delete process.env.MEGAPAIRS_CACHE;
  await server?.stop();
});

const s3 = () => ({ endpoint: server.endpoint, force_path_style: true, retry_base_ms: 1, retry_max_ms: 20, socket_timeout_ms: 60_000 });
const bucket = (prefix: string): Storage => openStorage(`s3://ingest/${prefix}`, { s3: s3() });

interface MetaRow {
  key: string;
  status: string;
  caption: string;
  re_caption: string | null;
  error_message: string | null;
}
const sql = (v: string | null) => (v === null ? 'NULL' : `'${v.replace(/'/g, "''")}'`);

/** img2dataset's metadata parquet, written by DuckDB with the given compression. */
async function metadataParquet(rows: MetaRow[], compression: 'zstd' | 'snappy'): Promise<Buffer> {
  const file = path.join(tempDir('meta'), 'meta.parquet');
  const values = rows.map(
    (r) => `(${sql(`https://example.com/${r.key}.png`)}, ${sql(r.caption)}, ${sql(r.re_caption)}, ${sql(r.key)}, ${sql(r.status)}, ${sql(r.error_message)})`,
  );
  await duckdb(
    `COPY (SELECT url::VARCHAR AS url, caption::VARCHAR AS caption, re_caption::VARCHAR AS re_caption, "key"::VARCHAR AS "key", status::VARCHAR AS status, error_message::VARCHAR AS error_message
       FROM (VALUES ${values.join(', ')}) t(url, caption, re_caption, "key", status, error_message))
     TO '${file}' (FORMAT parquet, COMPRESSION ${compression})`,
  );
  return readFileSync(file);
}

const downloaded = (list: Sample[]): MetaRow[] =>
  list.map((s) => ({ key: s.key, status: 'success', caption: s.txt.toString(), re_caption: `recaptioned: ${s.txt.toString()}`, error_message: null }));
const failed = (keys: string[], status = 'failed_to_download'): MetaRow[] =>
  keys.map((key) => ({ key, status, caption: 'alt text', re_caption: null, error_message: `HTTP Error 404: Not Found (${key})` }));

test('metadata from DuckDB (dictionary pages, ZSTD and SNAPPY) gives captions; failed downloads are counted', async () => {
  const input = bucket('recap/');
  const a = samples.slice(0, 20);
  const b = samples.slice(20, 40);
  const c = samples.slice(40, 45);
  await input.write('00000.tar', (await tarOf(membersOf(a))).bytes);
  await input.write(
    '00000.parquet',
    await metadataParquet([...downloaded(a.slice(0, 10)), ...failed(['900000001', '900000002']), ...downloaded(a.slice(10))], 'zstd'),
  );
  await input.write('00001.tar', (await tarOf(membersOf(b))).bytes);
  await input.write('00001.parquet', await metadataParquet([...downloaded(b), ...failed(['900000003'], 'failed_to_resize')], 'snappy'));
  await input.write('00002.tar', (await tarOf(membersOf(c))).bytes); // no metadata at all

  // The files are what pyarrow writes: dictionary-encoded pages, compressed.
  const meta = parquetMetadata(new Uint8Array(await input.read('00000.parquet')).buffer);
  const chunk = meta.row_groups[0].columns.find((col) => col.meta_data?.path_in_schema[0] === 'status')!.meta_data!;
  assert.equal(chunk.codec, 'ZSTD');
  assert.ok(
    chunk.encodings.some((e) => /DICTIONARY/.test(e)),
    `dictionary pages (${chunk.encodings})`,
  );

  const root = tempDir('ingest-meta');
  const config = demoConfig('s3://ingest/recap', root, {
    input: { path: 's3://ingest/recap', caption: { source: 'parquet', column: 're_caption' } },
    s3: s3(),
    work: 's3://ingest/run1/work',
  });
  const ctx = createContext(config);
  await runLocal(ctx, { progress: quiet });

  const part0 = await readParquet<CatalogRow>(ctx.work, ctx.layout.catalogPart(0), catalogSchema);
  assert.equal(part0.length, 20);
  for (const row of part0) assert.equal(row.caption, `recaptioned: ${a.find((s) => s.key === row.key)!.txt.toString()}`.replace(/\s+/g, ' ').trim());
  assert.equal((await readParquet(ctx.work, ctx.layout.catalogPart(1), catalogSchema)).length, 20);

  const ledger = await readLedger(ctx);
  const byItem = new Map(ledger.map((f) => [f.item, f]));
  for (const [key, reason, shard] of [
    ['900000001', 'img2dataset_failed_to_download', '00000'],
    ['900000002', 'img2dataset_failed_to_download', '00000'],
    ['900000003', 'img2dataset_failed_to_resize', '00001'],
  ]) {
    const f = byItem.get(key);
    assert.ok(f, `${key} in the ledger`);
    assert.equal(f.reason, reason);
    assert.equal(f.where, `s3://ingest/recap/${shard}.parquet`);
    assert.match(f.message, /HTTP Error 404/);
  }
  // No metadata, captions from metadata: the shard is named once and every sample once.
  assert.equal(byItem.get('00002.parquet')?.reason, 'missing_metadata');
  for (const s of c) assert.equal(byItem.get(s.key)?.reason, 'missing_caption', s.key);
  const summary = await summarize(ctx, []);
  assert.equal(summary.failures['catalog/img2dataset_failed_to_download'], 2);
  assert.equal(summary.failures['catalog/img2dataset_failed_to_resize'], 1);
  assert.equal(summary.images.catalogued, 40);
});

test('input faults end in the ledger with shard and key; the rest of the shard goes on', async () => {
  const input = bucket('faulty/');
  const [s0, s1, s2, s3s] = [samples.slice(0, 10), samples.slice(10, 20), samples.slice(20, 30), samples.slice(30, 40)];
  // 00000: whole, metadata lists two failed downloads.
  await input.write('00000.tar', (await tarOf(membersOf(s0))).bytes);
  await input.write('00000.parquet', await metadataParquet([...downloaded(s0), ...failed(['800000001', '800000002'])], 'zstd'));
  // 00001: the tar object is cut in the middle of a member.
  const t1 = await tarOf(membersOf(s1));
  const cut = Math.floor(t1.bytes.length * 0.6);
  await input.write('00001.tar', t1.bytes.subarray(0, cut));
  await input.write('00001.parquet', await metadataParquet(downloaded(s1), 'snappy'));
  // 00002: the metadata object is not parquet (a cut-off upload).
  await input.write('00002.tar', (await tarOf(membersOf(s2))).bytes);
  const good2 = await metadataParquet(downloaded(s2), 'zstd');
  await input.write('00002.parquet', good2.subarray(0, Math.floor(good2.length / 2)));
  // 00003: one sample has no image member; the tar object goes missing after cataloguing.
  await input.write(
    '00003.tar',
    (await tarOf([...membersOf(s3s), ['700000001.txt', Buffer.from('a caption and no image')], ['700000001.json', Buffer.from('{}')]])).bytes,
  );

  const root = tempDir('ingest-faults');
  const ctx = createContext(demoConfig('s3://ingest/faulty', root, { input: { path: 's3://ingest/faulty' }, s3: s3() }));
  const stages = pipelineStages();
  const resolved = await resolveRun(ctx, { record: true }); // one run: its keys are fixed when it starts
  await runLocal(ctx, { progress: quiet, stages: stages.slice(0, 2), resolved }); // catalog, manifest
  await s3Client(s3()).send(new DeleteObjectCommand({ Bucket: 'ingest', Key: 'faulty/00003.tar' }));
  // The tar went missing after cataloguing: the store's fault, not the images': embed fails the unit.
  await assert.rejects(
    runLocal(ctx, { progress: quiet, stages: stages.slice(2, 3), resolved }),
    /embed part-00003 failed: s3:\/\/ingest\/faulty\/00003\.tar: image \d+ .*not found/,
  );
  const ledger = await readLedger(ctx);
  const find = (item: string) => ledger.find((f) => f.item === item);

  assert.equal(find('800000001')?.reason, 'img2dataset_failed_to_download');
  assert.equal(find('800000002')?.where, 's3://ingest/faulty/00000.parquet');

  const tarFault = find('00001.tar');
  assert.equal(tarFault?.reason, 'corrupt_tar');
  assert.match(tarFault!.where, /^s3:\/\/ingest\/faulty\/00001\.tar@\d+$/);
  const kept1 = await readParquet<CatalogRow>(ctx.work, ctx.layout.catalogPart(1), catalogSchema);
  const seen1 = s1.filter((s) => t1.headers.get(`${s.key}.png`)! < cut);
  assert.ok(kept1.length > 0 && kept1.length <= seen1.length, 'samples before the cut are kept');
  for (const s of s1) {
    if (kept1.some((r) => r.key === s.key)) continue;
    const f = find(s.key);
    assert.ok(f, `${s.key} of the cut shard is catalogued or in the ledger`);
    assert.match(f.where, /s3:\/\/ingest\/faulty\/00001\.tar/);
  }
  assert.ok(
    ledger.some((f) => f.reason === 'missing_from_tar' && s1.some((s) => s.key === f.item)),
    'samples after the cut are named',
  );

  assert.equal(find('00002.parquet')?.reason, 'corrupt_metadata');
  assert.match(find('00002.parquet')!.where, /s3:\/\/ingest\/faulty\/00002\.parquet/);
  assert.equal((await readParquet(ctx.work, ctx.layout.catalogPart(2), catalogSchema)).length, 10, 'captions from the tar still work');

  assert.equal(find('700000001')?.reason, 'missing_image');
  assert.match(find('700000001')!.where, /s3:\/\/ingest\/faulty\/00003\.tar:700000001\.txt/);
  assert.equal((await readParquet(ctx.work, ctx.layout.catalogPart(3), catalogSchema)).length, 10);

  assert.deepEqual(
    ledger.filter((f) => f.stage === 'embed').map((f) => [f.unit, f.reason, f.retryable]),
    [['part-00003', 'unit_failed', true]],
    'no image is recorded as lost',
  );
});

test('a store that stays down past the retries fails the unit, and a rerun completes it', async () => {
  const input = bucket('down/');
  await input.write('00000.tar', (await tarOf(membersOf(samples.slice(0, 5)))).bytes);
  const proxy = await FaultProxy.start(server);
  try {
    proxy.inject({ fault: 'slowdown', times: 1000, match: (r) => r.method === 'GET' && r.url.includes('.tar') });
    const root = tempDir('ingest-down');
    const ctx = createContext(
      demoConfig('s3://ingest/down', root, { input: { path: 's3://ingest/down' }, s3: { ...s3(), endpoint: proxy.endpoint, max_attempts: 3 } }),
    );
    const catalog = pipelineStages().slice(0, 1);
    await assert.rejects(runLocal(ctx, { progress: quiet, stages: catalog }), /catalog part-00000 failed: .*00000\.tar.*gave up after 3 attempts/);
    assert.equal(await ctx.work.exists(ctx.layout.catalogPart(0)), false, 'no catalog part claims the shard is done');
    proxy.clear();
    await runLocal(ctx, { progress: quiet, stages: catalog });
    assert.equal((await readParquet(ctx.work, ctx.layout.catalogPart(0), catalogSchema)).length, 5);
  } finally {
    await proxy.stop();
  }
});
