// Reads img2dataset's webdataset layout: NNNNN.tar files whose members are grouped by sample key
// ({key}.jpg, {key}.txt, {key}.json), beside NNNNN.parquet metadata. A sample's members are
// consecutive in the tar, so grouping needs only the current sample in memory.
import path from 'node:path';
import type { Config } from '../config/schema.ts';
import { printableKey, unsafeKeyProblem } from '../storage/safe-key.ts';
import type { Storage } from '../storage/storage.ts';
import { readTarEntries } from './tar.ts';

const IMAGE_EXTENSIONS = ['jpg', 'jpeg', 'png', 'webp'] as const;

/** The most bytes of each member kind a sample may have (input.max_member_bytes). */
export interface MemberByteCaps {
  caption: number;
  json: number;
  image: number;
}

type MemberKind = keyof MemberByteCaps;

/** The caps of `input.max_member_bytes`, the image cap's default (4 bytes per pixel of input.max_pixels) filled in. */
export function memberByteCaps(input: Config['input']): MemberByteCaps {
  const { caption, json, image } = input.max_member_bytes;
  return { caption, json, image: image ?? 4 * input.max_pixels };
}

/** The kind of member an extension is, or undefined for members no stage reads (never held in memory). */
function kindOf(ext: string): MemberKind | undefined {
  if ((IMAGE_EXTENSIONS as readonly string[]).includes(ext)) return 'image';
  if (ext === 'txt') return 'caption';
  if (ext === 'json') return 'json';
  return undefined;
}

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
  /** Every member name of the sample, for messages: as the archive has them, untrusted. */
  members: string[];
  /**
   * Why the sample cannot be used, when a member of it has a name that could leave its folder
   * (unsafe_member_name) or is over its byte cap (member_too_large): it then holds no member bytes.
   */
  refused?: { reason: 'unsafe_member_name' | 'member_too_large'; member: string; message: string };
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

/** Why the sample a member belongs to must be refused, or undefined when the member is fine. */
function refusal(name: string, size: number, caps: MemberByteCaps): WebdatasetSample['refused'] {
  const unsafe = unsafeKeyProblem(name);
  if (unsafe) return { reason: 'unsafe_member_name', member: name, message: `member name "${printableKey(name)}" ${unsafe}` };
  const kind = kindOf(splitMember(name).ext);
  if (kind && size > caps[kind]) {
    const message = `member "${name}" is ${size} bytes, over input.max_member_bytes.${kind} (${caps[kind]})`;
    return { reason: 'member_too_large', member: name, message };
  }
  return undefined;
}

/**
 * Streams a shard's samples. A tar fault (truncation, bad header) is thrown after every complete
 * sample before it has been yielded, so the caller keeps those and records the fault. Only image,
 * caption and JSON members are read, each only when its name is safe and it is within its cap;
 * the bytes of any other member are streamed past.
 */
export async function* readSamples(input: Storage, tarKey: string, caps: MemberByteCaps): AsyncIterable<WebdatasetSample> {
  let current: WebdatasetSample | undefined;
  const read = (name: string, size: number) => kindOf(splitMember(name).ext) !== undefined && !refusal(name, size, caps);
  try {
    for await (const entry of readTarEntries(input.readStream(tarKey), input.uri(tarKey), { read })) {
      const { key, ext } = splitMember(entry.name);
      if (current && current.key !== key) {
        yield current;
        current = undefined;
      }
      current ??= { key, members: [] };
      current.members.push(entry.name);
      if (current.refused) continue;
      current.refused = refusal(entry.name, entry.size, caps);
      if (current.refused) {
        current = { key, members: current.members, refused: current.refused }; // none of its bytes go on
        continue;
      }
      const data = entry.data;
      if (data === undefined) continue; // a member no stage reads
      if (ext === 'txt') current.txt = data;
      else if (ext === 'json') current.json = data;
      else if (!current.image) current.image = { member: entry.name, ext, offset: entry.dataOffset, length: entry.size, data };
    }
  } catch (err) {
    // On a tar fault the sample in hand still holds its complete members: hand it over first.
    if (current) yield current;
    throw err;
  }
  if (current) yield current;
}
