// S3Storage against a real S3-protocol server (s3rver) behind a proxy that injects faults:
// paginated listings, ranged reads, multipart uploads, the localPath cache, and retries on
// SlowDown, 5xx, dropped connections and bodies cut mid-stream.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, beforeEach, test } from 'node:test';
import { parseConfig } from '../src/config/load.ts';
import { readImageBatch, type ImageLocation } from '../src/corpus/image-bytes.ts';
import { TarWriter } from '../src/corpus/tar.ts';
import { listShards } from '../src/corpus/webdataset.ts';
import { openStorage } from '../src/storage/open.ts';
import type { S3Settings } from '../src/config/schema.ts';
import type { Storage } from '../src/storage/storage.ts';
import { mapPool } from '../src/util/pool.ts';
import { tempDir } from './helpers.ts';
import { FaultProxy } from './s3-fault-proxy.ts';
import { startS3Server, type S3TestServer } from './s3-server.ts';

let server: S3TestServer;
let proxy: FaultProxy;
let prefixes = 0;
const cacheDir = tempDir('s3-cache');

before(async () => {
  server = await startS3Server(['store']);
  proxy = await FaultProxy.start(server);
});
after(async () => {
  await proxy?.stop();
  await server?.stop();
});
beforeEach(() => proxy.clear());

/** A storage under a fresh prefix, through the fault proxy, with short backoffs. */
function storage(s3: Partial<S3Settings> = {}, prefix = `t${++prefixes}`): Storage {
  return openStorage(`s3://store/${prefix}/`, {
    s3: { endpoint: proxy.endpoint, force_path_style: true, retry_base_ms: 1, retry_max_ms: 20, ...s3 },
    cacheDir,
  });
}

const collect = async (s: NodeJS.ReadableStream): Promise<Buffer> => {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
};
const gets = () => proxy.log.filter((r) => r.method === 'GET' && !r.url.includes('list-type'));

test('write, read, exists, list and a missing object', async () => {
  const s = storage();
  await s.write('a/one.txt', 'one');
  await s.write('a/two.bin', Buffer.from([1, 2, 3]));
  await s.write('b.txt', 'b');
  assert.equal((await s.read('a/one.txt')).toString(), 'one');
  assert.deepEqual([...(await s.read('a/two.bin'))], [1, 2, 3]);
  assert.equal(await s.exists('a/one.txt'), true);
  assert.equal(await s.exists('a/none.txt'), false);
  const keys: string[] = [];
  for await (const k of s.list('a/')) keys.push(k);
  assert.deepEqual(keys, ['a/one.txt', 'a/two.bin']);
  assert.match(s.uri('a/one.txt'), /^s3:\/\/store\/t\d+\/a\/one\.txt$/);
  await assert.rejects(s.read('a/none.txt'), (e: Error) => e.name === 'NotFoundError' && /s3:\/\/store\/t\d+\/a\/none\.txt/.test(e.message));
  await assert.rejects(s.readRange('a/none.txt', 0, 1), { name: 'NotFoundError' });
  await assert.rejects(collect(s.readStream('a/none.txt')), { name: 'NotFoundError' });
});

test('more than 1,000 keys: the listing pages through them and listShards finds every shard', async () => {
  const s = storage();
  const shards = 367; // x3 files = 1,101 keys
  const keys = Array.from({ length: shards }, (_, i) => String(i).padStart(5, '0')).flatMap((n) => [`${n}.tar`, `${n}.parquet`, `${n}_stats.json`]);
  await mapPool(keys, 32, (k) => s.write(k, 'x'));
  const listed: string[] = [];
  for await (const k of s.list('')) listed.push(k);
  assert.equal(listed.length, 1101);
  assert.deepEqual(listed, [...keys].sort());
  assert.ok(proxy.log.filter((r) => r.url.includes('list-type=2')).length >= 2, 'listed in more than one page');
  const found = await listShards(s);
  assert.equal(found.length, shards);
  assert.deepEqual(
    found.map((f) => f.number),
    Array.from({ length: shards }, (_, i) => i),
  );
});

test('ranged reads fetch only the bytes asked for', async () => {
  const s = storage();
  const data = randomBytes(300_000);
  await s.write('blob', data);
  proxy.clear();
  assert.deepEqual(await s.readRange('blob', 123_456, 1000), data.subarray(123_456, 124_456));
  assert.deepEqual(await s.readRange('blob', 0, 1), data.subarray(0, 1));
  assert.deepEqual(
    gets().map((r) => r.range),
    ['bytes=123456-124455', 'bytes=0-0'],
  );
  await assert.rejects(s.readRange('blob', 299_990, 100), /short read|InvalidRange|not satisfiable/);
});

test('files over one part go up as a multipart upload; smaller ones as one PUT', async () => {
  const s = storage({ part_size_mib: 5 });
  const dir = tempDir('s3-mp');
  const big = randomBytes(11 * 1024 * 1024 + 12345);
  writeFileSync(path.join(dir, 'big'), big);
  writeFileSync(path.join(dir, 'small'), big.subarray(0, 1000));
  // One part fails once with SlowDown: that part alone is sent again. The answer to the Complete
  // is lost after the server completed it: the retry finds the upload gone and the object whole.
  proxy.inject({ fault: 'slowdown', times: 1, match: (r) => r.url.includes('partNumber=2') });
  proxy.inject({ fault: 'lost-answer', times: 1, match: (r) => r.method === 'POST' && r.url.includes('uploadId=') });
  await s.writeFromFile('big.bin', path.join(dir, 'big'));
  assert.equal(proxy.faults('lost-answer').length, 1);
  const parts = proxy.log.filter((r) => r.method === 'PUT' && r.url.includes('partNumber='));
  assert.equal(parts.filter((r) => !r.fault).length, 3, 'three parts of at most 5 MiB');
  assert.equal(proxy.faults('slowdown').length, 1);
  assert.ok(
    proxy.log.some((r) => r.method === 'POST' && r.url.includes('uploads')),
    'CreateMultipartUpload',
  );
  assert.ok(
    proxy.log.some((r) => r.method === 'POST' && r.url.includes('uploadId=')),
    'CompleteMultipartUpload',
  );
  assert.ok((await s.read('big.bin')).equals(big));
  proxy.clear();
  await s.writeFromFile('small.bin', path.join(dir, 'small'));
  assert.deepEqual(
    proxy.log.map((r) => r.method),
    ['PUT'],
  );
  assert.ok((await s.read('small.bin')).equals(big.subarray(0, 1000)));
});

test('localPath downloads an object once, and again only when it changes', async () => {
  const prefix = `cache${++prefixes}`;
  const s = storage({}, prefix);
  await s.write('index/shard-00.hnsw', randomBytes(50_000));
  proxy.clear();
  const p1 = await s.localPath('index/shard-00.hnsw');
  const p2 = await s.localPath('index/shard-00.hnsw');
  assert.equal(p1, p2);
  assert.equal(gets().length, 1, 'one download in this process');
  // Another process (a fresh storage, same cache folder): a HEAD to check the version, no download.
  proxy.clear();
  const again = storage({}, prefix);
  assert.equal(await again.localPath('index/shard-00.hnsw'), p1);
  assert.deepEqual(
    proxy.log.map((r) => r.method),
    ['HEAD'],
  );
  // A replaced object is a new version: downloaded, never confused with the old copy.
  const replacement = randomBytes(40_000);
  await again.write('index/shard-00.hnsw', replacement);
  const third = storage({}, prefix);
  const p3 = await third.localPath('index/shard-00.hnsw');
  assert.notEqual(p3, p1);
  assert.ok(readFileSync(p3).equals(replacement));
  await assert.rejects(third.localPath('index/none'), { name: 'NotFoundError' });
});

test('503 SlowDown and 500 InternalError are retried with backoff', async () => {
  const s = storage();
  proxy.inject({ fault: 'slowdown', times: 3 });
  await s.write('k', 'value');
  assert.equal(proxy.faults('slowdown').length, 3);
  proxy.inject({ fault: 'internal-error', times: 2 });
  assert.equal((await s.read('k')).toString(), 'value');
  assert.equal(proxy.faults('internal-error').length, 2);
  proxy.inject({ fault: 'slowdown', times: 2, match: (r) => r.method === 'HEAD' });
  assert.equal(await s.exists('k'), true);
  proxy.inject({ fault: 'slowdown', times: 1, match: (r) => r.url.includes('list-type=2') });
  const keys: string[] = [];
  for await (const k of s.list('')) keys.push(k);
  assert.deepEqual(keys, ['k']);
});

test('a connection dropped before the answer is retried', async () => {
  const s = storage();
  proxy.inject({ fault: 'reset', times: 2, match: (r) => r.method === 'PUT' });
  await s.write('k', 'value');
  proxy.inject({ fault: 'reset', times: 2, match: (r) => r.method === 'GET' });
  assert.equal((await s.read('k')).toString(), 'value');
  assert.equal(proxy.faults('reset').length, 4);
});

test('a body cut mid-stream resumes from the byte where it stopped', async () => {
  const s = storage();
  const data = randomBytes(3 * 1024 * 1024);
  await s.write('shard.tar', data);
  proxy.clear();
  proxy.inject({ fault: 'cut-body', times: 2, cutAfter: 100_000, match: (r) => r.method === 'GET' });
  const streamed = await collect(s.readStream('shard.tar'));
  assert.ok(streamed.equals(data), 'the stream is whole and in order');
  const ranges = gets().map((r) => r.range);
  assert.equal(ranges[0], undefined);
  assert.equal(ranges[1], 'bytes=100000-', 'resumed at the cut');
  assert.equal(ranges[2], 'bytes=200000-');
  assert.equal(ranges.length, 3);
  // Whole and ranged reads are retried as a unit.
  proxy.inject({ fault: 'cut-body', times: 1, cutAfter: 1000, match: (r) => r.method === 'GET' });
  assert.ok((await s.read('shard.tar')).equals(data));
  proxy.inject({ fault: 'cut-body', times: 1, cutAfter: 10, match: (r) => r.method === 'GET' });
  assert.ok((await s.readRange('shard.tar', 5000, 4096)).equals(data.subarray(5000, 9096)));
});

test('when the retries run out, the error names the object and the attempts', async () => {
  const s = storage({ max_attempts: 3 });
  await s.write('k', 'v');
  proxy.inject({ fault: 'slowdown', times: 100 });
  await assert.rejects(s.read('k'), (e: Error) => /gave up after 3 attempts/.test(e.message) && /s3:\/\/store\/t\d+\/k/.test(e.message));
  await assert.rejects(collect(s.readStream('k')), /gave up after 3 attempts/);
});

test('a batch of catalogued images is one ranged read per run of consecutive members', async () => {
  const s = storage();
  const tar = new TarWriter();
  const members = Array.from({ length: 12 }, (_, i) => randomBytes(3000 + i * 100));
  const locs: ImageLocation[] = [];
  for (const [i, data] of members.entries()) locs.push({ tar: 'shard.tar', offset: (await tar.add(`${i}.png`, data)).dataOffset, length: data.length });
  await s.write('shard.tar', await tar.finish());
  proxy.clear();
  const batch = [locs[5], locs[0], locs[1], locs[2], locs[3], locs[4]];
  const got = await readImageBatch(s, batch);
  got.forEach((b, i) => assert.ok(b instanceof Buffer && b.equals(members[locs.indexOf(batch[i])]), `member ${i}`));
  assert.equal(gets().length, 1, 'six consecutive members, one GET');
  // A location past the end of the object (a tar cut after cataloguing) fails alone.
  proxy.clear();
  const past = { tar: 'shard.tar', offset: locs[11].offset + 20_000, length: 100 };
  const mixed = await readImageBatch(s, [locs[10], locs[11], past], { maxGap: 1_000_000 });
  assert.ok((mixed[0] as Buffer).equals(members[10]));
  assert.ok((mixed[1] as Buffer).equals(members[11]));
  assert.ok(mixed[2] instanceof Error);
  // Far apart members are separate reads.
  proxy.clear();
  await readImageBatch(s, [locs[0], locs[11]], { maxGap: 100 });
  assert.equal(gets().length, 2);
});

test('the s3 section of the config: defaults, ${VAR} expansion, unknown keys named', () => {
  const minimal = { input: { path: 's3://b/in' }, work: 's3://b/work', output: 's3://b/out' };
  const c = parseConfig({ ...minimal, s3: { endpoint: '${MINIO_URL}', force_path_style: true } }, { env: { MINIO_URL: 'http://minio:9000' } });
  assert.equal(c.s3.endpoint, 'http://minio:9000');
  assert.equal(c.s3.part_size_mib, 8);
  assert.equal(c.s3.max_attempts, 10);
  assert.equal(c.input.path, 's3://b/in');
  assert.throws(() => parseConfig({ ...minimal, s3: { endpont: 'x', access_key: 'k' } }), /s3\.endpont: unknown key[\s\S]*s3\.access_key: unknown key/);
  assert.throws(() => parseConfig({ ...minimal, s3: { part_size_mib: 1 } }), /s3\.part_size_mib/);
  assert.throws(() => openStorage('s3://Not_A_Bucket/x'), /not a valid bucket name/);
  assert.throws(() => openStorage('gs://bucket/x'), /unsupported location scheme/);
});

test('a ranged read with the version listed refuses the bytes of a replaced object (S3 If-Match, local size+mtime), at once and for a whole batch', async () => {
  const local = openStorage(tempDir('versioned'));
  for (const s of [storage(), local]) {
    const tar = new TarWriter();
    const members = [randomBytes(3000), randomBytes(3000), randomBytes(3000)];
    const locs: ImageLocation[] = [];
    for (const [i, data] of members.entries()) locs.push({ tar: 'shard.tar', offset: (await tar.add(`${i}.png`, data)).dataOffset, length: data.length });
    const bytes = await tar.finish();
    await s.write('shard.tar', bytes);
    const { version } = await s.stat('shard.tar');
    const listed = [];
    for await (const o of s.listVersions('')) listed.push(o);
    assert.deepEqual(listed, [{ key: 'shard.tar', size: bytes.length, version }]);
    assert.ok((await s.readRange('shard.tar', locs[1].offset, 3000, version)).equals(members[1]));
    // Same name, same size, other bytes: a corpus shard replaced after it was catalogued.
    const other = Buffer.from(bytes);
    other.fill(7, locs[0].offset, locs[2].offset + 3000);
    await new Promise((r) => setTimeout(r, 5)); // a new mtime to the ms for the local copy
    await s.write('shard.tar', other);
    assert.notEqual((await s.stat('shard.tar')).version, version);
    proxy.clear();
    await assert.rejects(s.readRange('shard.tar', locs[1].offset, 3000, version), (e: Error) => e.name === 'ObjectChangedError' && /changed/.test(e.message));
    if (s !== local) assert.equal(gets().length, 1, 'refused by the store, not retried');
    proxy.clear();
    const got = await readImageBatch(
      s,
      locs.map((l) => ({ ...l, version })),
    );
    for (const g of got) assert.ok(g instanceof Error && g.name === 'ObjectChangedError', String(g));
    if (s !== local) assert.equal(gets().length, 1, 'one refused read for the run, not one more per member');
  }
});
