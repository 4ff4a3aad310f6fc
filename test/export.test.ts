// `megapairs export`: the JSONL plus every image it names, 512x512 JPEG, to a local folder and to
// an S3 prefix; images fetched by ranged reads of the S3 input via the catalog; resumable; an image
// that cannot be fetched is in the ledger and its triples left out.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import sharp from 'sharp';
import { exportCommand } from '../src/cli/export-command.ts';
import { exportDataset } from '../src/export/export-dataset.ts';
import { exportedImageKey } from '../src/export/training-image.ts';
import { readLedger } from '../src/ledger/ledger.ts';
import { loadConfig } from '../src/config/load.ts';
import { createContext } from '../src/runner/context.ts';
import { runLocal } from '../src/runner/local.ts';
import { ProgressReporter } from '../src/runner/progress.ts';
import { openStorage } from '../src/storage/open.ts';
import { demoConfigObject, readJsonl, sampleSlice, tempDir, writeConfigFile } from './helpers.ts';
import { FaultProxy } from './s3-fault-proxy.ts';
import { directStorage, startS3Server, uploadCorpus, type S3TestServer } from './s3-server.ts';

const quiet = new ProgressReporter(process.stderr, true);
const opts = { size: 512, fit: 'contain' as const, quality: 90, concurrency: 4 };
let server: S3TestServer;
let proxy: FaultProxy;
let configFile: string;
let root: string;
let triples: Array<{ q_img: string; q_text: string[]; t_img: string; hns: string[] }>;
let images: Set<string>;

before(async () => {
  server = await startS3Server(['corpus', 'exports']);
  proxy = await FaultProxy.start(server);
  const slice = await sampleSlice();
  await uploadCorpus(server, slice, 's3://corpus/slice');
  root = tempDir('export-run');
  configFile = writeConfigFile(root, {
    ...demoConfigObject('s3://corpus/slice', root),
    s3: { endpoint: proxy.endpoint, force_path_style: true, max_attempts: 3, retry_base_ms: 1, retry_max_ms: 5 },
  });
  await runLocal(createContext(loadConfig(configFile)), { progress: quiet });
  triples = readJsonl(path.join(root, 'output', 'megapairs.jsonl')) as typeof triples;
  images = new Set(triples.flatMap((t) => [t.q_img, t.t_img, ...t.hns]));
});
after(async () => {
  await proxy?.stop();
  await server?.stop();
});

test('export to a folder: the JSONL and every image it names, 512x512 JPEG, by ranged reads', async () => {
  const to = path.join(tempDir('export-local'), 'megapairs');
  proxy.clear();
  await exportCommand(['--config', configFile, '--to', to]);
  const exported = readJsonl(path.join(to, 'megapairs.jsonl')) as typeof triples;
  assert.equal(exported.length, triples.length);
  exported.forEach((e, i) => {
    assert.deepEqual(e.q_text, triples[i].q_text);
    assert.equal(e.q_img, exportedImageKey(triples[i].q_img));
    assert.deepEqual(e.hns, triples[i].hns.map(exportedImageKey));
    assert.match(e.q_img, /^images\/\d{5}\/\d+\.jpg$/);
  });
  const files = readdirSync(path.join(to, 'images'), { recursive: true, withFileTypes: true }).filter((d) => d.isFile());
  assert.equal(files.length, images.size, 'exactly the images the triples use');
  for (const img of [...images].slice(0, 10)) {
    const meta = await sharp(readFileSync(path.join(to, exportedImageKey(img)))).metadata();
    assert.equal(meta.format, 'jpeg');
    assert.equal(meta.width, 512);
    assert.equal(meta.height, 512);
  }
  // One ranged GET per image, never a whole shard.
  const tarGets = proxy.log.filter((r) => r.method === 'GET' && r.url.includes('.tar'));
  assert.equal(tarGets.length, images.size);
  assert.ok(tarGets.every((r) => /^bytes=\d+-\d+$/.test(r.range ?? '')));
});

test('an interrupted export resumes: images already there are skipped', async () => {
  const to = path.join(tempDir('export-resume'), 'out');
  const ctx = createContext(loadConfig(configFile));
  const dest = openStorage(to);
  const first = await exportDataset(ctx, dest, opts);
  assert.equal(first.images.written, images.size);
  const gone = [...images].slice(0, 3).map(exportedImageKey);
  for (const k of gone) rmSync(path.join(to, k));
  rmSync(path.join(to, 'megapairs.jsonl'));
  const second = await exportDataset(ctx, dest, opts);
  assert.deepEqual(second.images, { referenced: images.size, written: 3, skipped: images.size - 3, failed: 0 });
  assert.equal(second.triples.written, triples.length);
  for (const k of gone) assert.ok(existsSync(path.join(to, k)));
});

test('export to an S3 prefix, and again: nothing is uploaded twice', async () => {
  const ctx = createContext(loadConfig(configFile));
  const dest = directStorage(server, 's3://exports/megapairs-v1/');
  const first = await exportDataset(ctx, dest, opts);
  assert.equal(first.images.written, images.size);
  const keys: string[] = [];
  for await (const k of dest.list('')) keys.push(k);
  assert.equal(keys.length, images.size + 1);
  const lines = (await dest.read('megapairs.jsonl')).toString('utf8').split('\n').filter(Boolean);
  assert.equal(lines.length, triples.length);
  const one = JSON.parse(lines[0]) as { t_img: string };
  assert.equal((await sharp(await dest.read(one.t_img)).metadata()).width, 512);
  const again = await exportDataset(ctx, dest, opts);
  assert.equal(again.images.written, 0);
  assert.equal(again.images.skipped, images.size);
});

test('an image that cannot be fetched is in the ledger, and its triples are left out', async () => {
  const ctx = createContext(loadConfig(configFile));
  // The first tar read the export makes keeps failing with SlowDown past the retries.
  let range: string | undefined;
  proxy.clear();
  proxy.inject({
    fault: 'slowdown',
    times: 100,
    match: (r) => r.method === 'GET' && r.url.includes('.tar') && (range ??= r.range) === r.range,
  });
  const to = path.join(tempDir('export-fail'), 'out');
  const report = await exportDataset(ctx, openStorage(to), opts);
  proxy.clear();
  assert.equal(report.images.failed, 1);
  assert.ok(report.triples.dropped >= 1);
  assert.equal(report.triples.written + report.triples.dropped, triples.length);
  const failures = (await readLedger(ctx)).filter((f) => f.stage === 'export_images');
  assert.equal(failures.length, 1);
  assert.equal(failures[0].reason, 'export_failed');
  assert.match(failures[0].where, /^s3:\/\/corpus\/slice\/\d{5}\.tar:\d+\.png@\d+$/);
  assert.match(failures[0].message, /gave up after 3 attempts/);
  const lines = readJsonl(path.join(to, 'megapairs.jsonl')) as typeof triples;
  for (const l of lines) for (const img of [l.q_img, l.t_img, ...l.hns]) assert.ok(existsSync(path.join(to, img)), `${img} exported`);
  rmSync(path.join(root, 'work', 'failures', 'export_images'), { recursive: true, force: true });
});
