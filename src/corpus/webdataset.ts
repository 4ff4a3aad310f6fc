// Reads img2dataset's webdataset layout: NNNNN.tar files whose members are grouped by sample key
// ({key}.jpg, {key}.txt, {key}.json), beside NNNNN.parquet metadata. A sample's members are
// consecutive in the tar, so grouping needs only the current sample in memory.
import path from 'node:path';
import type { Storage } from '../storage/storage.ts';
import { readTarEntries, type TarEntry } from './tar.ts';

const IMAGE_EXTENSIONS = ['jpg', 'jpeg', 'png', 'webp'] as const;

export interface ShardRef {
  /** The shard's number, from its file name (00003.tar -> 3). */
  number: number;
  /** Keys in the input storage. */
  tar: string;
  parquet: string;
  /** The tar's size and version when listed (storage.ts ObjectVersion): its identity, part of the catalog's key. */
  size: number;
  version: string;
  /** The metadata parquet's size and version, when the listing has one beside the tar. */
  metadata?: { size: number; version: string };
}

export interface WebdatasetSample {
  key: string;
  image?: { member: string; ext: string; offset: number; length: number; data: Buffer };
  txt?: Buffer;
  json?: Buffer;
  /** Every member name of the sample, for messages. */
  members: string[];
}

/** The shards of an input prefix, ordered by number. */
export async function listShards(input: Storage): Promise<ShardRef[]> {
  const shards: ShardRef[] = [];
  const parquets = new Map<string, { size: number; version: string }>();
  for await (const { key, size, version } of input.listVersions('')) {
    if (key.endsWith('.parquet')) parquets.set(key, { size, version });
    const m = /^(?:.*\/)?(\d+)\.tar$/.exec(key);
    if (!m) continue;
    shards.push({ number: Number(m[1]), tar: key, parquet: key.replace(/\.tar$/, '.parquet'), size, version });
  }
  for (const s of shards) s.metadata = parquets.get(s.parquet);
  shards.sort((a, b) => a.number - b.number);
  for (let i = 1; i < shards.length; i++) {
    if (shards[i].number === shards[i - 1].number) {
      throw new Error(`${input.root}: two shards share number ${shards[i].number} (${shards[i - 1].tar}, ${shards[i].tar})`);
    }
  }
  return shards;
}

function splitMember(name: string): { key: string; ext: string } {
  const base = path.posix.basename(name);
  const dot = base.indexOf('.');
  const dir = path.posix.dirname(name);
  const stem = dot < 0 ? base : base.slice(0, dot);
  return { key: dir === '.' ? stem : `${dir}/${stem}`, ext: dot < 0 ? '' : base.slice(dot + 1).toLowerCase() };
}

/**
 * Streams a shard's samples. A tar fault (truncation, bad header) is thrown after every complete
 * sample before it has been yielded, so the caller keeps those and records the fault.
 */
export async function* readSamples(input: Storage, tarKey: string): AsyncIterable<WebdatasetSample> {
  let current: WebdatasetSample | undefined;
  const entries: AsyncIterable<TarEntry> = readTarEntries(input.readStream(tarKey), input.uri(tarKey));
  try {
    for await (const entry of entries) {
      const { key, ext } = splitMember(entry.name);
      if (current && current.key !== key) {
        yield current;
        current = undefined;
      }
      current ??= { key, members: [] };
      current.members.push(entry.name);
      if ((IMAGE_EXTENSIONS as readonly string[]).includes(ext) && !current.image) {
        current.image = { member: entry.name, ext, offset: entry.dataOffset, length: entry.size, data: entry.data };
      } else if (ext === 'txt') current.txt = entry.data;
      else if (ext === 'json') current.json = entry.data;
    }
  } catch (err) {
    // On a tar fault the sample in hand still holds its complete members: hand it over first.
    if (current) yield current;
    throw err;
  }
  if (current) yield current;
}
