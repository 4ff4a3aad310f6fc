// What the planner measures before any run: the corpus size from its listing (img2dataset's
// NNNNN_stats.json, else by counting samples), and on a small sample of it the configured
// encoders' real speed and vector size (onnxruntime on this machine's execution providers), the
// speed of preprocessing on one core as the embed stage does it (one decode for every image encoder), the
// bytes of a catalog row, a caption and an exported JPEG, and the bytes per row of the later
// artifacts' Parquet (written for real from rows shaped like the run's).
import { mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { tmpdir } from 'node:os';
import { performance } from 'node:perf_hooks';
import { writeParquet, type TableSchema } from '../artifacts/parquet.ts';
import { describePrompt, instructPrompt, PROMPT_VERSION } from '../annotate/prompts.ts';
import { DEMONSTRATIONS } from '../annotate/demonstrations.ts';
import { ENCODER_NAMES, type Config, type EncoderName } from '../config/schema.ts';
import { listShards, memberByteCaps, readSamples, type ShardRef, type WebdatasetSample } from '../corpus/webdataset.ts';
import { decodeThreads } from '../encoders/decode-pool.ts';
import { writeChw } from '../encoders/image-preprocess.ts';
import { OnnxEncoder } from '../encoders/onnx-encoder.ts';
import { preprocessImages } from '../encoders/preprocess-images.ts';
import { resolveEncoders } from '../encoders/resolve.ts';
import { providerName } from '../encoders/sessions.ts';
import { trainingJpeg } from '../export/training-image.ts';
import { annotationsSchema } from '../artifacts/tables.ts';
import { catalogSchema, type CatalogRow } from '../artifacts/tables.ts';
import { triplesSchema } from '../artifacts/tables.ts';
import { pairsSchema } from '../artifacts/tables.ts';
import type { StageContext } from '../core/stage.ts';
import { LocalStorage } from '../storage/local.ts';
import { mapPool } from '../util/pool.ts';
import { Rng, seedFrom } from '../util/rng.ts';

export type Source = 'measured' | 'given' | 'previous run' | 'estimated' | 'upper bound';

export interface CorpusCount {
  images: number;
  shards: number;
  /** How `images` was found: stats files of every shard, counting every shard, or extrapolated from some. */
  how: string;
}

export interface EncoderRate {
  dim: number;
  /** Model forward passes, images (or captions) per second, preprocessing excluded. */
  perSecond: number;
  source: Source;
}

/** Preprocessing as the embed stage does it: each image decoded once and resized for every image encoder, on one core. */
export interface PreprocessRate {
  perCoreSecond: number;
  /** The decode threads a run on this machine gets (encoders.decode_threads; 0: its cores). */
  threads: number;
}

export interface Measured {
  corpus: CorpusCount;
  sample: { images: number; meanImageBytes: number; meanCaptionBytes: number; meanExportJpegBytes: number };
  encoders: Record<EncoderName, EncoderRate>;
  preprocess: PreprocessRate;
  /** Execution providers the rates were measured with. */
  providers: string;
  /** Bytes per row of each Parquet artifact, and per line of megapairs.jsonl. */
  rowBytes: { catalog: number; pairs: number; annotations: number; triples: number; jsonl: number };
}

/** Distinct corpus rows the Parquet sizes are measured on: compression needs about a part's worth. */
const ROWS_MEASURED = 1000;

/** The corpus size from its listing: every shard's stats file when all have one, else by counting. */
export async function countCorpus(ctx: StageContext, countShards = 4): Promise<CorpusCount> {
  let shards = await listShards(ctx.input);
  if (ctx.config.input.max_shards) shards = shards.slice(0, ctx.config.input.max_shards);
  if (!shards.length) throw new Error(`input.path: no NNNNN.tar shards at ${ctx.input.uri('')}`);
  // Small reads, many of them on a large corpus: a few at once.
  const counts = await mapPool(shards, 16, async (s): Promise<number | undefined> => {
    const key = s.tar.replace(/\.tar$/, '_stats.json');
    if (!(await ctx.input.exists(key))) return undefined;
    const successes = (JSON.parse((await ctx.input.read(key)).toString('utf8')) as { successes?: number }).successes;
    if (typeof successes !== 'number') throw new Error(`${ctx.input.uri(key)}: no "successes" count (img2dataset's stats file)`);
    return successes;
  });
  const fromStats = counts.every((c) => c !== undefined) ? counts.reduce((a: number, b) => a + b!, 0) : -1;
  if (fromStats >= 0) return { images: fromStats, shards: shards.length, how: `img2dataset stats of all ${shards.length} shards` };
  const counted = shards.slice(0, countShards);
  let images = 0;
  for (const s of counted) for await (const sample of readSamples(ctx.input, s.tar, memberByteCaps(ctx.config.input))) if (sample.image) images++;
  if (counted.length === shards.length) return { images, shards: shards.length, how: `counted in all ${shards.length} shards` };
  return {
    images: Math.round((images / counted.length) * shards.length),
    shards: shards.length,
    how: `counted in ${counted.length} of ${shards.length} shards, scaled`,
  };
}

/** A corpus sample with an image, its caption (the tar's .txt member) and its shard. */
type CorpusSample = WebdatasetSample & { image: NonNullable<WebdatasetSample['image']>; caption: string; tar: string };

async function sampleOf(ctx: StageContext, shards: ShardRef[], n: number): Promise<CorpusSample[]> {
  const out: CorpusSample[] = [];
  for (const s of shards) {
    for await (const sample of readSamples(ctx.input, s.tar, memberByteCaps(ctx.config.input))) {
      if (!sample.image) continue;
      out.push({ ...sample, image: sample.image, caption: sample.txt?.toString('utf8').trim() ?? '', tar: s.tar });
      if (out.length >= n) return out;
    }
  }
  return out;
}

const mean = (xs: number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0);

/** Items per second of `run` over `items` in batches, after one untimed warm-up batch (session creation). */
async function rate<T>(items: T[], batch: number, run: (chunk: T[]) => Promise<unknown>): Promise<number> {
  await run(items.slice(0, batch));
  const started = performance.now();
  for (let i = 0; i < items.length; i += batch) await run(items.slice(i, i + batch));
  return items.length / ((performance.now() - started) / 1000);
}

/** Bytes per row of `rows` written as the stages write Parquet. */
async function parquetRowBytes(schema: TableSchema, rows: object[], tmp: string): Promise<number> {
  await mkdir(tmp, { recursive: true });
  const dir = await mkdtemp(path.join(tmp, 'rows-'));
  try {
    await writeParquet(new LocalStorage(dir), 'rows.parquet', schema, rows);
    return (await stat(path.join(dir, 'rows.parquet'))).size / Math.max(1, rows.length);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Runs the encoders on `n` images of the corpus (not those in `given`: their rate is given); row sizes from up to ROWS_MEASURED. */
export async function measure(ctx: StageContext, n: number, given: Partial<Record<EncoderName, number>>): Promise<Measured> {
  const config = ctx.config;
  const corpus = await countCorpus(ctx);
  const rows = await sampleOf(ctx, (await listShards(ctx.input)).slice(0, config.input.max_shards || undefined), Math.max(n, ROWS_MEASURED));
  if (!rows.length) throw new Error(`input.path: no images in the shards at ${ctx.input.uri('')}`);
  const samples = rows.slice(0, n);
  const bytes = samples.map((s) => s.image.data);
  const resolved = await resolveEncoders(config, ctx.cacheDir);
  // Preprocessing one image after another on this thread (after one untimed image): a core's rate.
  const task = (b: Uint8Array) => ({ bytes: b, specs: resolved.images, maxPixels: config.input.max_pixels });
  await preprocessImages(task(bytes[0]));
  const started = performance.now();
  const prepared: Uint8Array[][] = [];
  for (const b of bytes) {
    const r = await preprocessImages(task(b));
    if ('pixels' in r) prepared.push(r.pixels);
  }
  const preprocess = { perCoreSecond: bytes.length / ((performance.now() - started) / 1000), threads: decodeThreads(config.encoders.decode_threads) };
  if (!prepared.length) throw new Error(`input.path: none of the ${bytes.length} sampled images at ${ctx.input.uri('')} decodes`);
  const encoders = {} as Record<EncoderName, EncoderRate>;
  for (const [k, spec] of resolved.images.entries()) {
    const encoder = await OnnxEncoder.open(spec, resolved.settings);
    const rgb = prepared.map((p) => p[k]);
    const dim = (await encoder.encodeImages(chw(rgb.slice(0, 1), spec), 1)).dim;
    const perSecond = given[spec.name] ?? (await rate(rgb, spec.batchSize, (chunk) => encoder.encodeImages(chw(chunk, spec), chunk.length)));
    encoders[spec.name] = { dim, perSecond, source: given[spec.name] ? 'given' : 'measured' };
  }
  const caption = resolved.caption;
  const textEncoder = await OnnxEncoder.open(caption, resolved.settings);
  const texts = samples.map((s) => s.caption || s.key);
  const captionDim = (await textEncoder.encodeTexts(texts.slice(0, 1))).dim;
  encoders.caption = {
    dim: captionDim,
    perSecond: given.caption ?? (await rate(texts, caption.batchSize, (chunk) => textEncoder.encodeTexts(chunk))),
    source: given.caption ? 'given' : 'measured',
  };
  const jpegs = await Promise.all(
    bytes.slice(0, 16).map((b) => trainingJpeg(b, { size: 512, fit: 'contain', quality: 90, maxPixels: config.input.max_pixels })),
  );
  return {
    corpus,
    sample: {
      images: samples.length,
      meanImageBytes: mean(bytes.map((b) => b.length)),
      meanCaptionBytes: mean(texts.map((t) => Buffer.byteLength(t))),
      meanExportJpegBytes: mean(jpegs.map((j) => j.length)),
    },
    encoders,
    preprocess,
    providers: resolved.settings.executionProviders.map(providerName).join(', '),
    rowBytes: await rowBytes(config, rows, corpus.images, tmpdir()),
  };
}

function chw(rgb: Uint8Array[], spec: Parameters<typeof writeChw>[1]): Float32Array {
  const out = new Float32Array(rgb.length * 3 * spec.size * spec.size);
  rgb.forEach((px, i) => writeChw(px, spec, out, i));
  return out;
}

/** Rows shaped like the run's (real captions and names, ids of the corpus's magnitude, text of the configured lengths), written as the stages write them. */
async function rowBytes(config: Config, samples: CorpusSample[], images: number, tmp: string): Promise<Measured['rowBytes']> {
  // Seeded random picks, not patterns: patterns would compress better than the real artifacts do.
  const rng = new Rng(seedFrom('plan', config.run.seed));
  const pick = () => rng.int(0, samples.length - 1);
  const name = (i = pick()) => `${samples[i].tar.replace(/\.tar$/, '')}/${samples[i].image.member}`;
  const id = () => rng.int(0, Math.max(images, 1) - 1);
  const words = Math.round(mean(wordNum(config)));
  const captionWords = samples.flatMap((s) => s.caption.split(/\s+/)).filter(Boolean);
  const text = (count: number) => Array.from({ length: count }, () => captionWords[rng.int(0, captionWords.length - 1)] ?? 'word').join(' ');
  const description = () => `Both images show ${text(Math.max(1, words - 12))}. However, the Source Image ${text(4)}, whereas the Target Image ${text(4)}.`;
  const instructions = () => Array.from({ length: minInstructions(config) + 1 }, () => `Find ${text(8)}.`);
  const k = config.mine.hard_negatives;
  const n = samples.length;
  const catalog: CatalogRow[] = samples.map((s, i) => ({
    row: i,
    key: s.key,
    image: name(i),
    tar: s.tar,
    version: `${s.image.length}-1767225600000`, // a local tar's (size-mtime): the bytes it takes
    offset: s.image.offset,
    length: s.image.length,
    format: s.image.ext,
    caption: s.caption,
    width: 512,
    height: 512,
  }));
  const [lo, hi] = config.mine.band;
  const pairs = Array.from({ length: n }, (_, i) => {
    const [q, t] = [id(), id()];
    const relation = ENCODER_NAMES[i % ENCODER_NAMES.length];
    return {
      pair_id: `${q}-${relation}-${t}`,
      q_id: q,
      t_id: t,
      relation,
      similarity: lo + rng.next() * (hi - lo),
      rank: rng.int(0, config.mine.k - 1),
      hns: [q, ...Array.from({ length: k - 1 }, id)],
    };
  });
  const annotations = pairs.map((p) => ({
    pair_id: p.pair_id,
    description: description(),
    instructions: instructions(),
    annotator: config.annotate.annotator,
    model: 'model',
    prompt_version: PROMPT_VERSION,
    prompt_tokens: rng.int(800, 1600),
    completion_tokens: rng.int(80, 200),
  }));
  const triples = pairs.map((p, i) => {
    const [q, t] = [pick(), pick()];
    return {
      q_img: name(q),
      q_text: annotations[i].instructions,
      t_img: name(t),
      hns: [name(q), ...Array.from({ length: k - 1 }, () => name())],
      relation: p.relation,
      similarity: p.similarity,
      description: annotations[i].description,
      annotator: config.annotate.annotator,
      model: 'model',
      prompt_version: PROMPT_VERSION,
      pair_id: p.pair_id,
      q_id: p.q_id,
      t_id: p.t_id,
      q_caption: samples[q].caption,
      t_caption: samples[t].caption,
    };
  });
  const jsonl = mean(triples.map((t) => Buffer.byteLength(JSON.stringify({ q_img: t.q_img, q_text: t.q_text, t_img: t.t_img, hns: t.hns }) + '\n')));
  return {
    catalog: await parquetRowBytes(catalogSchema, catalog, tmp),
    pairs: await parquetRowBytes(pairsSchema, pairs, tmp),
    annotations: await parquetRowBytes(annotationsSchema, annotations, tmp),
    triples: await parquetRowBytes(triplesSchema, triples, tmp),
    jsonl,
  };
}

/** The annotator settings the planner reads, whatever the schema of this checkout has (optional access). */
export interface AnnotatorSettings {
  word_num?: [number, number];
  min_instructions?: number;
  demonstrations?: number;
  mllm?: string;
  llm?: string;
  describe?: { model?: string };
  instruct?: { model?: string };
  /** USD per million tokens, per model. */
  price?: Record<string, { prompt: number; completion: number }>;
}

export const annotatorSettings = (config: Config) => (config.annotate.openai ?? {}) as AnnotatorSettings;
export const wordNum = (config: Config): [number, number] => annotatorSettings(config).word_num ?? [60, 100];
export const minInstructions = (config: Config) => annotatorSettings(config).min_instructions ?? 3;

/** Tokens per request, estimated from the prompts themselves (4 characters a token) and the images' tokens. */
export function estimateTokens(
  config: Config,
  imageTokens: number,
): { describe: { prompt: number; completion: number }; instruct: { prompt: number; completion: number } } {
  const words = mean(wordNum(config));
  const tokens = (s: string) => Math.ceil(s.length / 4);
  const description = 'word '.repeat(Math.round(words));
  const demos = DEMONSTRATIONS.slice(0, annotatorSettings(config).demonstrations ?? 5);
  const instructionsOut = (minInstructions(config) + 1) * 12;
  return {
    describe: { prompt: tokens(describePrompt(Math.round(words))) + 2 * imageTokens + 16, completion: Math.ceil(words / 0.75) },
    instruct: { prompt: tokens(instructPrompt(description, demos, minInstructions(config))), completion: Math.ceil(instructionsOut / 0.75) },
  };
}
