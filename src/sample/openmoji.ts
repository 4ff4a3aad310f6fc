// A real demo corpus, built offline from the openmoji package: every colour emoji rendered to a PNG
// and written in the img2dataset "webdataset" layout the pipeline reads (NNNNN.tar with
// {key}.png/.txt/.json members, NNNNN.parquet, NNNNN_stats.json). The output is byte-for-byte
// deterministic, so a demo run is reproducible end to end.
import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, rm } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import path from 'node:path';
import { Writable } from 'node:stream';
import sharp from 'sharp';
import parquet from 'parquetjs-lite';
import { TarWriter } from '../corpus/tar.ts';
import { LocalStorage } from '../storage/local.ts';
import { mapPool } from '../util/pool.ts';

export interface SampleCorpusOptions {
  outDir: string;
  /** images per shard, at most 10,000 (the key has 4 digits for the index in the shard); default 500 */
  shardSize?: number;
  /** the first `limit` emoji only; 0 or undefined: all */
  limit?: number;
  /** side of the square PNGs; default 128 */
  imageSize?: number;
  /** renders in flight; default 2 */
  concurrency?: number;
  onProgress?: (done: number, total: number) => void;
}

export interface SampleCorpusResult {
  shards: number;
  /** images written (status "success") */
  images: number;
  /** emoji left out: no colour SVG in the package, or the SVG failed to render */
  skipped: number;
}

/** One openmoji.json record, the fields used here. */
interface OpenmojiRecord {
  emoji: string;
  hexcode: string;
  group: string;
  subgroups: string;
  annotation: string;
  tags: string;
  openmoji_tags: string;
  skintone_base_hexcode: string;
}

/** A row of the shard's parquet and the content of its {key}.json member (img2dataset's columns + re_caption). */
interface SampleRow {
  url: string;
  caption: string;
  re_caption: string;
  key: string;
  status: 'success' | 'failed_to_resize';
  error_message: string | null;
  width: number | null;
  height: number | null;
  original_width: number | null;
  original_height: number | null;
  exif: string | null;
  sha256: string | null;
}

const MARKER = '_SUCCESS';
const FORMAT = 'megapairs-openmoji-sample/1';
const SHARD_FILE = /^(\d{5})(\.tar|\.parquet|_stats\.json)$/;

// Column order as img2dataset writes it: input columns (url, caption, extra columns), then its own.
const PARQUET_SCHEMA = new parquet.ParquetSchema({
  url: { type: 'UTF8', compression: 'SNAPPY' },
  caption: { type: 'UTF8', optional: true, compression: 'SNAPPY' },
  re_caption: { type: 'UTF8', optional: true, compression: 'SNAPPY' },
  key: { type: 'UTF8', compression: 'SNAPPY' },
  status: { type: 'UTF8', compression: 'SNAPPY' },
  error_message: { type: 'UTF8', optional: true, compression: 'SNAPPY' },
  width: { type: 'INT32', optional: true },
  height: { type: 'INT32', optional: true },
  original_width: { type: 'INT32', optional: true },
  original_height: { type: 'INT32', optional: true },
  exif: { type: 'UTF8', optional: true },
  sha256: { type: 'UTF8', optional: true, compression: 'SNAPPY' },
});

export async function buildSampleCorpus(opts: SampleCorpusOptions): Promise<SampleCorpusResult> {
  const shardSize = opts.shardSize ?? 500;
  const limit = opts.limit ?? 0;
  const imageSize = opts.imageSize ?? 128;
  const concurrency = opts.concurrency ?? 2;
  requireInt('shardSize', shardSize, 1, 10_000);
  requireInt('limit', limit, 0, Number.MAX_SAFE_INTEGER);
  requireInt('imageSize', imageSize, 1, 8192);
  requireInt('concurrency', concurrency, 1, 64);

  const openmoji = await loadOpenmoji();
  // What decides the bytes of the output; concurrency and the callback do not.
  const recipe = { format: FORMAT, openmoji: openmoji.version, sharp: sharp.versions.sharp, shardSize, limit, imageSize };

  const marker = path.join(opts.outDir, MARKER);
  const previous = await readMarker(marker);
  if (previous && sameRecipe(previous.recipe, recipe)) return previous.result;

  await mkdir(opts.outDir, { recursive: true });
  await rm(marker, { force: true });
  // Every file is written whole (temp then rename): a reader never sees half a shard.
  const out = new LocalStorage(opts.outDir);

  // In openmoji.json order, those with a colour SVG, up to the limit.
  const byHexcode = new Map(openmoji.records.map((r) => [r.hexcode, r]));
  const chosen: OpenmojiRecord[] = [];
  let missingSvg = 0;
  for (const record of openmoji.records) {
    if (limit > 0 && chosen.length === limit) break;
    if (existsSync(svgPath(openmoji.dir, record))) chosen.push(record);
    else missingSvg++;
  }
  const shards = Math.ceil(chosen.length / shardSize);
  await removeStaleShards(opts.outDir, shards);

  let done = 0;
  let images = 0;
  let failed = 0;
  for (let shard = 0; shard < shards; shard++) {
    const records = chosen.slice(shard * shardSize, (shard + 1) * shardSize);
    const rendered = await mapPool(records, concurrency, async (record, index) => {
      const sample = await renderSample(openmoji.dir, withBaseTags(record, byHexcode), shardKey(shard, index), imageSize);
      opts.onProgress?.(++done, chosen.length);
      return sample;
    });
    await writeShard(out, shard, rendered);
    for (const { png } of rendered) {
      if (png) images++;
      else failed++;
    }
  }

  const result: SampleCorpusResult = { shards, images, skipped: missingSvg + failed };
  // Written last: its presence means every shard above is complete.
  await out.write(MARKER, JSON.stringify({ recipe, result }, null, 2) + '\n');
  return result;
}

// ---------------------------------------------------------------------------------------------
// Source

interface Openmoji {
  dir: string;
  version: string;
  records: OpenmojiRecord[];
}

async function loadOpenmoji(): Promise<Openmoji> {
  const packageJson = createRequire(import.meta.url).resolve('openmoji/package.json');
  const dir = path.dirname(packageJson);
  const version = (JSON.parse(await readFile(packageJson, 'utf8')) as { version: string }).version;
  const records = JSON.parse(await readFile(path.join(dir, 'data', 'openmoji.json'), 'utf8')) as OpenmojiRecord[];
  return { dir, version, records };
}

const svgPath = (dir: string, record: OpenmojiRecord) => path.join(dir, 'color', 'svg', `${record.hexcode}.svg`);

/** img2dataset's key: 5-digit shard id then 4-digit index in the shard. */
const shardKey = (shard: number, index: number) => `${String(shard).padStart(5, '0')}${String(index).padStart(4, '0')}`;
const shardName = (shard: number) => String(shard).padStart(5, '0');

// ---------------------------------------------------------------------------------------------
// Captions

const GROUP_LABELS: Record<string, string> = {
  'smileys-emotion': 'smileys & emotion',
  'people-body': 'people & body',
  'animals-nature': 'animals & nature',
  'food-drink': 'food & drink',
  'travel-places': 'travel & places',
  'extras-openmoji': 'OpenMoji extras',
  'extras-unicode': 'Unicode extras',
  component: 'components',
};

/** Skin-tone variants carry no tags of their own: they get their base emoji's. */
function withBaseTags(record: OpenmojiRecord, byHexcode: Map<string, OpenmojiRecord>): OpenmojiRecord {
  const base = record.skintone_base_hexcode ? byHexcode.get(record.skintone_base_hexcode) : undefined;
  if (!base || record.tags || record.openmoji_tags) return record;
  return { ...record, tags: base.tags, openmoji_tags: base.openmoji_tags };
}

const groupLabel = (group: string) => GROUP_LABELS[group] ?? group.replace(/-/g, ' ');

const splitTags = (tags: string) =>
  tags
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean);

/**
 * A readable sentence from the annotation, group and tags, e.g. "Grinning face; an emoji in
 * smileys & emotion (face smiling); tagged cheerful, cheery, face, grin, happy, smile." Semicolons,
 * because annotations have commas of their own ("woman: light skin tone, curly hair").
 */
export function describeEmoji(record: Pick<OpenmojiRecord, 'annotation' | 'group' | 'subgroups' | 'tags' | 'openmoji_tags'>): string {
  const annotation = record.annotation.trim();
  const tags = [...new Set([...splitTags(record.tags), ...splitTags(record.openmoji_tags)])].filter((t) => t.toLowerCase() !== annotation.toLowerCase());
  const group = record.group ? groupLabel(record.group) : '';
  const subgroup = record.subgroups ? groupLabel(record.subgroups) : '';
  const where = group && subgroup ? `${group} (${subgroup})` : group || subgroup;
  const parts: string[] = [];
  if (annotation) parts.push(annotation.charAt(0).toUpperCase() + annotation.slice(1));
  parts.push(where ? `an emoji in ${where}` : 'an emoji');
  if (tags.length) parts.push(`tagged ${tags.join(', ')}`);
  if (!annotation && !tags.length) return '';
  return parts.join('; ') + '.';
}

// ---------------------------------------------------------------------------------------------
// Rendering

interface RenderedSample {
  row: SampleRow;
  png?: Buffer;
}

async function renderSample(dir: string, record: OpenmojiRecord, key: string, imageSize: number): Promise<RenderedSample> {
  const row: SampleRow = {
    url: `openmoji:${record.hexcode}`,
    caption: record.annotation.trim(),
    re_caption: describeEmoji(record),
    key,
    status: 'success',
    error_message: null,
    width: null,
    height: null,
    original_width: null,
    original_height: null,
    exif: null,
    sha256: null,
  };
  try {
    const svg = await readFile(svgPath(dir, record));
    // As img2dataset does, the hash is of the original download (here the SVG), before resizing.
    row.sha256 = createHash('sha256').update(svg).digest('hex');
    const meta = await sharp(svg).metadata();
    const original = Math.max(meta.width ?? 72, meta.height ?? 72);
    // Rasterise at the target size rather than scaling a small bitmap up.
    const png = await sharp(svg, { density: Math.min(100_000, (72 * imageSize) / original) })
      .resize(imageSize, imageSize, { fit: 'contain', background: { r: 0, g: 0, b: 0, alpha: 0 } })
      .ensureAlpha()
      .png({ compressionLevel: 9 })
      .toBuffer();
    Object.assign(row, { width: imageSize, height: imageSize, original_width: meta.width ?? null, original_height: meta.height ?? null });
    return { row, png };
  } catch (err) {
    Object.assign(row, { status: 'failed_to_resize', error_message: `${record.hexcode}.svg: ${(err as Error).message}` });
    return { row };
  }
}

// ---------------------------------------------------------------------------------------------
// Writing

async function writeShard(out: LocalStorage, shard: number, samples: RenderedSample[]): Promise<void> {
  const name = shardName(shard);

  const tar = new TarWriter();
  for (const { row, png } of samples) {
    if (!png) continue; // img2dataset keeps failures in the parquet only
    await tar.add(`${row.key}.png`, png);
    await tar.add(`${row.key}.txt`, Buffer.from(row.re_caption, 'utf8'));
    await tar.add(`${row.key}.json`, Buffer.from(JSON.stringify(row), 'utf8'));
  }
  await out.write(`${name}.tar`, await tar.finish());

  await out.write(`${name}.parquet`, await parquetBytes(samples.map((s) => s.row)));

  const successes = samples.filter((s) => s.png).length;
  const statusDict: Record<string, number> = {};
  for (const { row } of samples) {
    const status = row.status === 'success' ? 'success' : row.error_message!;
    statusDict[status] = (statusDict[status] ?? 0) + 1;
  }
  // img2dataset's fields; times are 0 so that two builds give identical files.
  const stats = {
    count: samples.length,
    successes,
    failed_to_download: 0,
    failed_to_resize: samples.length - successes,
    duration: 0,
    start_time: 0,
    end_time: 0,
    status_dict: statusDict,
  };
  await out.write(`${name}_stats.json`, JSON.stringify(stats, null, 4));
}

async function parquetBytes(rows: SampleRow[]): Promise<Buffer> {
  const chunks: Buffer[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      chunks.push(chunk);
      callback();
    },
  });
  // DataPage V1: the page format every parquet reader handles.
  const writer = await parquet.ParquetWriter.openStream(PARQUET_SCHEMA, sink, { useDataPageV2: false });
  for (const row of rows) await writer.appendRow({ ...row });
  await writer.close();
  return Buffer.concat(chunks);
}

/** Shard files from an earlier build with more shards, which would otherwise look like part of this one. */
async function removeStaleShards(outDir: string, shards: number): Promise<void> {
  for (const file of await readdir(outDir)) {
    const match = SHARD_FILE.exec(file);
    if (match && Number(match[1]) >= shards) await rm(path.join(outDir, file), { force: true });
  }
}

async function readMarker(file: string): Promise<{ recipe: Record<string, unknown>; result: SampleCorpusResult } | undefined> {
  try {
    const marker = JSON.parse(await readFile(file, 'utf8'));
    return marker && typeof marker === 'object' && marker.recipe && marker.result ? marker : undefined;
  } catch {
    return undefined; // absent or unreadable: build
  }
}

function sameRecipe(a: Record<string, unknown>, b: Record<string, unknown>): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function requireInt(name: string, value: number, min: number, max: number): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`buildSampleCorpus: ${name} must be an integer from ${min} to ${max}, got ${value}`);
  }
}
