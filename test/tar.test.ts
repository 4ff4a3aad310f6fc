import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { readTarEntries, TarError, TarWriter, type TarEntry } from '../src/corpus/tar.ts';

/** Feeds a buffer in fixed-size chunks, so headers and members straddle chunk boundaries. */
async function* chunked(buf: Buffer, size: number): AsyncIterable<Buffer> {
  for (let i = 0; i < buf.length; i += size) yield buf.subarray(i, i + size);
}

/** Every entry read before the reader threw, and what it threw (undefined if it did not). */
async function readAll(source: AsyncIterable<Buffer>, where = 'test.tar'): Promise<{ entries: TarEntry[]; error?: unknown }> {
  const entries: TarEntry[] = [];
  try {
    for await (const entry of readTarEntries(source, where)) entries.push(entry);
    return { entries };
  } catch (error) {
    return { entries, error };
  }
}

/** A raw header block, for entry kinds TarWriter never writes (pax, directories, links). */
function rawHeader(name: string, size: number, type: string, magic = 'ustar\u000000'): Buffer {
  const block = Buffer.alloc(512);
  block.write(name, 0, 'utf8');
  block.write('0000644\0', 100, 'latin1');
  block.write('0000000\0', 108, 'latin1');
  block.write('0000000\0', 116, 'latin1');
  block.write(size.toString(8).padStart(11, '0') + '\0', 124, 'latin1');
  block.write('00000000000\0', 136, 'latin1');
  block.write(type, 156, 'latin1');
  block.write(magic, 257, 'latin1');
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of block) sum += b;
  block.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1');
  return block;
}

const pad = (data: Buffer) => Buffer.concat([data, Buffer.alloc((512 - (data.length % 512)) % 512)]);

function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  let length = Buffer.byteLength(body) + 1;
  while (String(length).length + Buffer.byteLength(body) !== length) length = String(length).length + Buffer.byteLength(body);
  return `${length}${body}`;
}

const members: Array<[string, Buffer]> = [
  ['000000000.png', Buffer.alloc(1000, 7)],
  ['000000000.txt', Buffer.from('a caption', 'utf8')],
  ['empty.json', Buffer.alloc(0)],
  ['exact-block.bin', Buffer.alloc(512, 1)],
  ['one-over.bin', Buffer.alloc(513, 2)],
  ['dir/ünïcödé.txt', Buffer.from('utf-8 name', 'utf8')],
];

async function sampleArchive(): Promise<{ tar: Buffer; positions: Array<{ headerOffset: number; dataOffset: number }> }> {
  const writer = new TarWriter();
  const positions = [];
  for (const [name, data] of members) positions.push(await writer.add(name, data));
  return { tar: await writer.finish(), positions };
}

test('TarWriter output reads back member by member, with offsets for ranged reads', async () => {
  const { tar, positions } = await sampleArchive();
  assert.equal(tar.length % 512, 0);
  for (const chunkSize of [7, 512, 1000, tar.length]) {
    const { entries, error } = await readAll(chunked(tar, chunkSize));
    assert.equal(error, undefined);
    assert.deepEqual(
      entries.map((e) => [e.name, e.data]),
      members,
    );
    entries.forEach((e, i) => {
      assert.equal(e.size, e.data.length);
      assert.deepEqual({ headerOffset: e.headerOffset, dataOffset: e.dataOffset }, positions[i]);
      assert.deepEqual(tar.subarray(e.dataOffset, e.dataOffset + e.size), e.data);
    });
  }
});

test('TarWriter is deterministic, streams to a Writable, and GNU tar lists what it wrote', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'megapairs-tar-'));
  try {
    const longUstar = `${'p'.repeat(60)}/${'q'.repeat(60)}/${'r'.repeat(40)}.png`; // 163 bytes: prefix + name
    const longGnu = `${'x'.repeat(250)}.json`; // no '/' to split at: GNU 'L'
    const all: Array<[string, Buffer]> = [...members, [longUstar, Buffer.from('ustar prefix')], [longGnu, Buffer.from('gnu long name')]];

    const file = path.join(dir, 'out.tar');
    const streamed = new TarWriter(createWriteStream(file, { highWaterMark: 256 }));
    for (const [name, data] of all) await streamed.add(name, data);
    assert.equal((await streamed.finish()).length, 0);

    const collected = new TarWriter();
    for (const [name, data] of all) await collected.add(name, data);
    const bytes = await collected.finish();
    assert.deepEqual(await readFile(file), bytes, 'same members, same bytes, whichever mode');

    const { entries, error } = await readAll(createReadStream(file, { highWaterMark: 300 }));
    assert.equal(error, undefined);
    assert.deepEqual(
      entries.map((e) => [e.name, e.data]),
      all,
    );

    const listing = execFileSync('tar', ['-tvf', file], { encoding: 'utf8' }).trim().split('\n');
    assert.equal(listing.length, all.length);
    listing.forEach((line, i) => {
      assert.match(line, /^-rw-r--r-- 0\/0 +\d+ 1970-01-01 00:00 /);
      assert.ok(line.endsWith(` ${all[i][0]}`), `${line} names ${all[i][0]}`);
      assert.ok(line.includes(` ${all[i][1].length} 1970`), `${line} has size ${all[i][1].length}`);
    });
    assert.equal(execFileSync('tar', ['-xOf', file, longGnu], { encoding: 'utf8' }), 'gnu long name');
    assert.equal(execFileSync('tar', ['-xOf', file, longUstar], { encoding: 'utf8' }), 'ustar prefix');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('pax paths, GNU headers and non-regular entries', async () => {
  const paxPath = `pax/${'long-'.repeat(40)}name.txt`;
  const global = Buffer.from(paxRecord('comment', 'ignored global header'));
  const pax = Buffer.from(paxRecord('path', paxPath) + paxRecord('mtime', '0'));
  const content = Buffer.from('pax member');
  const tar = Buffer.concat([
    rawHeader('pax_global_header', global.length, 'g'),
    pad(global),
    rawHeader('somedir/', 0, '5'),
    rawHeader('link', 0, '2'),
    rawHeader('PaxHeaders/x', pax.length, 'x'),
    pad(pax),
    rawHeader('truncated-name.txt', content.length, '0'),
    pad(content),
    rawHeader('gnu-magic.txt', 3, '0', 'ustar  \0'), // GNU magic: the prefix area is not a prefix
    pad(Buffer.from('gnu')),
    Buffer.alloc(1024),
  ]);
  const { entries, error } = await readAll(chunked(tar, 100));
  assert.equal(error, undefined);
  assert.deepEqual(
    entries.map((e) => [e.name, e.data.toString()]),
    [
      [paxPath, 'pax member'],
      ['gnu-magic.txt', 'gnu'],
    ],
  );
  assert.equal(entries[0].dataOffset, 512 * 7); // g + data, dir, link, x + data, then its header
  assert.equal(entries[0].headerOffset, 512 * 6);

  // The hand-made archive is valid to an independent reader too.
  const dir = await mkdtemp(path.join(tmpdir(), 'megapairs-tar-'));
  try {
    await writeFile(path.join(dir, 'pax.tar'), tar);
    const names = execFileSync('tar', ['-tf', path.join(dir, 'pax.tar')], { encoding: 'utf8' })
      .trim()
      .split('\n');
    assert.deepEqual(names, ['somedir/', 'link', paxPath, 'gnu-magic.txt']);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a truncated archive yields the complete members, then throws TarError naming file and offset', async () => {
  const { tar, positions } = await sampleArchive();

  // cut inside the data of member 1
  const midMember = positions[1].dataOffset + 4;
  let got = await readAll(chunked(tar.subarray(0, midMember), 64), '/data/00007.tar');
  assert.deepEqual(
    got.entries.map((e) => e.name),
    [members[0][0]],
  );
  assert.ok(got.error instanceof TarError);
  assert.equal(got.error.where, '/data/00007.tar');
  assert.equal(got.error.offset, midMember);
  assert.match(got.error.message, /\/data\/00007\.tar/);
  assert.match(got.error.message, new RegExp(`offset ${midMember}`));
  assert.match(got.error.message, /truncated/);

  // cut inside the header of member 3
  const midHeader = positions[3].headerOffset + 100;
  got = await readAll(chunked(tar.subarray(0, midHeader), 512), 'shard.tar');
  assert.equal(got.entries.length, 3);
  assert.ok(got.error instanceof TarError);
  assert.equal(got.error.offset, positions[3].headerOffset);
  assert.match(got.error.message, /shard\.tar.*header/);

  // cut exactly between members: every member read is whole, but the end-of-archive blocks are missing
  got = await readAll(chunked(tar.subarray(0, positions[4].headerOffset), 512));
  assert.equal(got.entries.length, 4);
  assert.ok(got.error instanceof TarError);
  assert.equal(got.error.offset, positions[4].headerOffset);
});

test('a corrupted header byte gives a checksum TarError at that header', async () => {
  const { tar, positions } = await sampleArchive();
  const corrupt = Buffer.from(tar);
  corrupt[positions[2].headerOffset + 5] ^= 0x01; // inside the name field
  const { entries, error } = await readAll(chunked(corrupt, 4096), 'bad.tar');
  assert.equal(entries.length, 2);
  assert.ok(error instanceof TarError);
  assert.equal(error.offset, positions[2].headerOffset);
  assert.match(error.message, /^bad\.tar: bad tar header checksum at byte offset \d+$/);
});
