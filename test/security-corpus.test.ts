// A corpus made by an attacker: member names that climb out of their folder, absolute, with a
// backslash, a NUL or a control character; symlink and hardlink members; members over their byte
// caps; a size header that claims far more than the file holds; a shard in a folder whose name
// holds a backslash. The run finishes, each bad sample is in the ledger with its reason, no unsafe
// name reaches the triples, and neither the run nor any export writes outside its folders.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, test } from 'node:test';
import sharp from 'sharp';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { readParquet } from '../src/artifacts/parquet.ts';
import { catalogSchema, type CatalogRow } from '../src/artifacts/tables.ts';
import { configSchema } from '../src/config/schema.ts';
import { readTarEntries, TarError } from '../src/corpus/tar.ts';
import { exportDataset } from '../src/export/export-dataset.ts';
import { exportShards } from '../src/export/export-shards.ts';
import { readLedger, type Failure } from '../src/ledger/ledger.ts';
import { createContext } from '../src/runner/context.ts';
import { pipelineStages } from '../src/pipeline.ts';
import { runLocal } from '../src/runner/local.ts';
import { ProgressReporter } from '../src/runner/progress.ts';
import type { StageContext } from '../src/core/stage.ts';
import { openStorage } from '../src/storage/open.ts';
import { s3Client } from '../src/storage/s3-client.ts';
import { pathUnder, UnsafeKeyError, unsafeKeyProblem } from '../src/storage/safe-key.ts';
import { demoConfig, duckdb, membersOf, sliceSamples, tempDir } from './helpers.ts';
import { END_OF_ARCHIVE, paxMember, tarHeader, tarMember } from './hostile-tar.ts';
import { directStorage, startS3Server, type S3TestServer } from './s3-server.ts';

const quiet = new ProgressReporter(process.stderr, true);
const caps = { caption: 1024, json: 4096, image: 100_000 };
const configSchemaS3 = (s: object) => configSchema.shape.s3.parse(s);

/** Every file under `dir`, as paths relative to it. */
function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => !e.isDirectory())
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)));
}

let base: string;
let ctx: StageContext;
let ledger: Failure[];
let server: S3TestServer;

before(async () => {
  const good = await sliceSamples(['00000.tar']);
  const [a, b, c, d, e, f, g, h, i, j] = good;
  base = tempDir('hostile');
  const corpus = path.join(base, 'corpus');
  await mkdir(path.join(corpus, 'we\\ird'), { recursive: true });
  await mkdir(path.join(base, 'elsewhere')); // the sentinel: must stay empty
  const noise = await sharp(Buffer.from(Array.from({ length: 300 * 300 * 3 }, (_, k) => (k * 7919) % 251)), { raw: { width: 300, height: 300, channels: 3 } })
    .png({ compressionLevel: 0 })
    .toBuffer();
  assert.ok(noise.length > caps.image);

  const parts: Buffer[] = [];
  for (const [name, data] of membersOf(good.slice(10, 40))) parts.push(tarMember(name, data));
  parts.push(tarMember('../../../../elsewhere/evil.png', a.png), tarMember('../../../../elsewhere/evil.txt', a.txt));
  parts.push(tarMember('/abs/evil2.png', b.png), tarMember('/abs/evil2.txt', b.txt));
  parts.push(tarMember('back\\slash.png', c.png), tarMember('back\\slash.txt', c.txt));
  parts.push(paxMember({ path: 'nul\u0000x.png' }), tarMember('nulx.png', d.png), paxMember({ path: 'nul\u0000x.txt' }), tarMember('nulx.txt', d.txt));
  parts.push(tarMember('ctl\u0001x.png', e.png), tarMember('ctl\u0001x.txt', e.txt));
  parts.push(tarMember('link.png', Buffer.alloc(0), '2', '/etc/passwd'), tarMember('link.txt', f.txt));
  parts.push(tarMember('hard.png', Buffer.alloc(0), '1', '00000/0000.png'), tarMember('hard.txt', g.txt));
  parts.push(tarMember('bigcaption.png', h.png), tarMember('bigcaption.txt', Buffer.alloc(10 * 1024, 'a')));
  parts.push(tarMember('bigjson.png', i.png), tarMember('bigjson.txt', i.txt), tarMember('bigjson.json', Buffer.alloc(10 * 1024, ' ')));
  parts.push(tarMember('bigimage.png', noise), tarMember('bigimage.txt', j.txt));
  parts.push(END_OF_ARCHIVE);
  await writeFile(path.join(corpus, '00000.tar'), Buffer.concat(parts));

  // Shard 1: whole samples, then a caption whose header claims 400 MB the file does not have.
  const liar = [...membersOf(good.slice(40, 50)).map(([n, data]) => tarMember(n, data)), tarHeader('liar.txt', 400 * 1024 * 1024), Buffer.alloc(4096)];
  await writeFile(path.join(corpus, '00001.tar'), Buffer.concat(liar));
  // Shard 2: good samples, in a folder whose name holds a backslash.
  await writeFile(
    path.join(corpus, 'we\\ird', '00002.tar'),
    Buffer.concat([...membersOf(good.slice(0, 10)).map(([n, data]) => tarMember(n, data)), END_OF_ARCHIVE]),
  );

  const run = path.join(base, 'run');
  ctx = createContext(demoConfig(corpus, run, { input: { path: corpus, max_member_bytes: caps } }));
  await runLocal(ctx, { progress: quiet });
  ledger = await readLedger(ctx);
  server = await startS3Server(['exports', 'corpus']);
});
after(() => server?.stop());

test('unsafe member names, links, oversized members and lying sizes are ledgered with their reasons', () => {
  const reasonOf = (item: string) => ledger.filter((f) => f.item === item).map((f) => f.reason);
  for (const item of ['../../../../elsewhere/evil', '/abs/evil2', 'back\\\\slash', 'nul\\u0000x', 'ctl\\u0001x', 'we\\\\ird/00002.tar']) {
    assert.deepEqual(reasonOf(item), ['unsafe_member_name'], item);
  }
  for (const item of ['bigcaption', 'bigjson', 'bigimage']) assert.deepEqual(reasonOf(item), ['member_too_large'], item);
  assert.match(ledger.find((f) => f.item === 'bigcaption')!.message, /10240 bytes, over input\.max_member_bytes\.caption \(1024\)/);
  for (const item of ['link', 'hard']) assert.deepEqual(reasonOf(item), ['missing_image'], item);
  const liar = ledger.find((f) => f.reason === 'corrupt_tar');
  assert.ok(liar, 'the lying size header is a corrupt tar');
  assert.match(liar.where, /00001\.tar@\d+/);
  assert.match(liar.message, /liar\.txt.*of 419430400 data bytes/);
  // Every ledger line is one line, whatever the names held.
  for (const f of ledger) assert.ok(!/\p{Cc}/u.test(f.item + f.where + f.message), JSON.stringify(f));
});

test('the catalog and the triples hold only safe names, and the good samples go on', async () => {
  const rows: CatalogRow[] = [];
  for (const n of [0, 1, 2]) rows.push(...(await readParquet<CatalogRow>(ctx.work, ctx.layout.catalogPart(n), catalogSchema)));
  assert.equal(rows.length, 30 + 10, 'shard 0: its 30 good samples; shard 1: the 10 before the lie; shard 2: none');
  for (const r of rows) assert.equal(unsafeKeyProblem(r.image), undefined, r.image);
  const triples = await duckdb(`select q_img, t_img, hns from '${ctx.output.uri('triples/*.parquet')}'`);
  assert.ok(triples.length > 0);
  for (const t of triples) {
    for (const img of [t.q_img, t.t_img, ...(t.hns as string[])] as string[]) {
      assert.equal(unsafeKeyProblem(img), undefined, img);
      assert.doesNotMatch(img, /evil|slash|nul|ctl|big|link|hard|liar/);
    }
  }
});

test('from S3, member names and object keys are refused alike', async () => {
  // Put with the raw client: our own storage refuses the backslash key, as it should.
  const settings = { endpoint: server.endpoint, force_path_style: true };
  const client = s3Client(configSchemaS3(settings));
  const corpus = path.join(base, 'corpus');
  for (const key of filesUnder(corpus)) {
    const objectKey = `hostile/${key.split(path.sep).join('/')}`;
    await client.send(new PutObjectCommand({ Bucket: 'corpus', Key: objectKey, Body: readFileSync(path.join(corpus, key)) }));
  }
  const s3ctx = createContext(
    demoConfig('s3://corpus/hostile/', path.join(base, 'run-s3'), { input: { path: 's3://corpus/hostile/', max_member_bytes: caps }, s3: settings }),
  );
  await runLocal(s3ctx, { progress: quiet, stages: pipelineStages().slice(0, 1) });
  const fromS3 = (await readLedger(s3ctx, ['catalog'])).map((f) => `${f.item} ${f.reason}`).sort();
  const fromDisk = ledger
    .filter((f) => f.stage === 'catalog')
    .map((f) => `${f.item} ${f.reason}`)
    .sort();
  assert.deepEqual(fromS3, fromDisk);
});

test('every export format writes only under --to, local and S3', async () => {
  const image = { size: 64, fit: 'contain' as const, quality: 80, concurrency: 4, maxPixels: ctx.config.input.max_pixels };
  const tos = ['jsonl', 'hf', 'webdataset'].map((format) => ({ format, to: path.join(base, 'run', `export-${format}`) }));
  for (const { format, to } of tos) {
    const dest = openStorage(to);
    if (format === 'jsonl') await exportDataset(ctx, dest, image);
    else await exportShards(ctx, dest, format as 'hf' | 'webdataset', { ...image, batch: 16 });
    assert.ok(filesUnder(to).length > 0, `${format} wrote its files`);
  }
  const s3 = directStorage(server, 's3://exports/hostile/');
  await exportDataset(ctx, s3, image);
  const keys: string[] = [];
  for await (const k of directStorage(server, 's3://exports/').list('')) keys.push(k);
  assert.ok(keys.length > 0 && keys.every((k) => k.startsWith('hostile/') && !unsafeKeyProblem(k)), keys.join(', '));

  // Nothing outside the run's folders: the sentinel is empty and the base holds only what it should.
  assert.deepEqual(filesUnder(path.join(base, 'elsewhere')), []);
  const top = new Set(filesUnder(base).map((f) => f.split(path.sep).slice(0, 2).join('/')));
  for (const t of top) assert.match(t, /^(corpus\/|run\/(work|output|export-(jsonl|hf|webdataset))$|run-s3\/work$)/, `${t} written outside the run's folders`);
  assert.ok(!existsSync('/abs/evil2.png') && !existsSync('/abs/evil2.jpg'));
});

test('every writer refuses a key that could leave its root, before any byte is written', async () => {
  const root = path.join(base, 'writers');
  const local = openStorage(root);
  const s3 = directStorage(server, 's3://exports/writers/');
  for (const key of ['../escape.jpg', 'images/../../escape.jpg', '/abs.jpg', 'a\\b.jpg', 'nul\u0000.jpg', 'line\n.jpg']) {
    await assert.rejects(local.write(key, 'x'), UnsafeKeyError, key);
    await assert.rejects(local.writeFromFile(key, import.meta.filename), UnsafeKeyError, key);
    await assert.rejects(s3.write(key, 'x'), UnsafeKeyError, key);
    assert.throws(() => pathUnder(root, key), UnsafeKeyError);
  }
  assert.equal(pathUnder(root, 'images/./00000/a.jpg'), path.join(root, 'images/00000/a.jpg'));
  assert.deepEqual(
    filesUnder(base).filter((f) => /escape|abs\.jpg/.test(f)),
    [],
  );
  const keys: string[] = [];
  for await (const k of directStorage(server, 's3://exports/').list('writers/')) keys.push(k);
  assert.deepEqual(keys, []);
});

test('a member the reader declines is streamed past, and a header that lies about its size is a truncated tar', async () => {
  const tar = Buffer.concat([tarMember('a.txt', Buffer.from('hello')), tarHeader('b.txt', 8 * 1024 ** 3), Buffer.alloc(2048)]);
  const seen: Array<{ name: string; data?: Buffer }> = [];
  const err = await (async () => {
    for await (const e of readTarEntries(Readable.from([tar]), 'lie.tar', { read: (_name, size) => size < 1024 })) seen.push(e);
  })().catch((e: unknown) => e);
  assert.deepEqual(
    seen.map((e) => [e.name, e.data?.toString()]),
    [['a.txt', 'hello']],
  );
  assert.ok(err instanceof TarError && err.truncated, String(err));
  // A pax header over 1 MiB is refused, not read.
  const bigPax = Buffer.concat([tarHeader('././@PaxHeader', 2 * 1024 * 1024, 'x'), Buffer.alloc(1024)]);
  await assert.rejects(
    (async () => {
      for await (const _ of readTarEntries(Readable.from([bigPax]), 'pax.tar'));
    })(),
    /type 'x' header of 2097152 bytes/,
  );
});
