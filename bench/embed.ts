// The embed stage against its two limits, side by side in one run: raw onnxruntime sessions
// (pre-made tensors, each encoder at its batch_size, the three one after another: 1 / sum(1/raw_i))
// and decode + preprocess alone on every core (the decode threads), then the embed stage itself;
// goal: stage >= 0.9 x min(raw, preprocess). Three setups:
//   (a) the built-in models on the openmoji sample (small PNGs);
//   (b) tiny models that cost next to nothing (224x224 inputs, CLIP and DINOv2 preprocessing, so
//       each image is resampled twice) on 512x384 JPEGs: preprocessing-bound, a GPU's situation;
//   (c) a ViT-B/16 random-weight image tower beside (b)'s tiny DINOv2-style one, made with
//       python3 tools/export_onnx.py eva-clip-image --random --out data/.cache/bench/vit-b16.onnx
// On the CPU provider decoding and inference share the cores, so there the stage can reach at most
// 1 / (1/preprocess + 1/raw) (printed as the shared-cores bound); on a GPU inference leaves the
// cores to decoding. Small limits measure mostly the stage's start (threads, sessions).
// Usage: npx tsx bench/embed.ts [--limit 2000] [--jpeg-limit 600] [--vit-limit 48] [--vit path.onnx]
//   [--concurrency 1] [--decode-threads 0] [--only a,b,c]
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { readParquet } from '../src/artifacts/parquet.ts';
import { catalogSchema, type CatalogRow } from '../src/artifacts/tables.ts';
import { parseConfig } from '../src/config/load.ts';
import { readImageBatch } from '../src/corpus/image-bytes.ts';
import { decodeThreads, slotsInPool } from '../src/encoders/decode-pool.ts';
import { openEncoderThreads } from '../src/encoders/encoder-thread.ts';
import type { TensorType } from '../src/encoders/image-tensor.ts';
import { OnnxEncoder } from '../src/encoders/onnx-encoder.ts';
import { attr, encodeModel, GraphBuilder } from '../src/encoders/onnx-writer.ts';
import { resolveEncoders, type ImageEncoderSpec, type TextEncoderSpec } from '../src/encoders/resolve.ts';
import { pipelineStages } from '../src/pipeline.ts';
import { createContext } from '../src/runner/context.ts';
import { runLocal, runStage } from '../src/runner/local.ts';
import { ProgressReporter } from '../src/runner/progress.ts';
import { buildSampleCorpus } from '../src/sample/openmoji.ts';
import { benchPreprocess } from './preprocess.ts';

const { values } = parseArgs({
  options: {
    limit: { type: 'string', default: '2000' },
    'jpeg-limit': { type: 'string', default: '600' },
    'vit-limit': { type: 'string', default: '48' },
    vit: { type: 'string' },
    concurrency: { type: 'string', default: '1' },
    'decode-threads': { type: 'string', default: '0' },
    only: { type: 'string', default: 'preprocess,a,b,c' },
  },
});
const root = path.join(import.meta.dirname, '..');
const cacheDir = path.join(root, 'data', '.cache');
const benchDir = path.join(cacheDir, 'bench');
const vit = values.vit ?? path.join(benchDir, 'vit-b16.onnx');
const concurrency = Number(values.concurrency);
const only = new Set(values.only.split(','));
const load = () =>
  os
    .loadavg()
    .map((l) => l.toFixed(1))
    .join(' ');

// First, per core: the project's preprocessing against sharp's decode and sharp's own resize.
if (only.has('preprocess')) await benchPreprocess();

// ---- the stage against raw sessions and preprocessing on all cores ------------------------------

/** A model that costs next to nothing: float32 pixel_values [N, 3, 224, 224] -> channel means @ W -> [N, 8]. */
async function tinyImageModel(): Promise<string> {
  const file = path.join(benchDir, 'tiny-image-224.onnx');
  if (existsSync(file)) return file;
  const g = new GraphBuilder();
  const m = g.op('ReduceMean', ['pixel_values'], { axes: attr.ints([2, 3]), keepdims: attr.int(0) });
  const w = Float32Array.from({ length: 3 * 8 }, (_, i) => Math.sin(i * 78.233 + 1));
  g.op('MatMul', [m, g.floats('w', [3, 8], w)], undefined, 'image_embeds');
  const bytes = encodeModel({
    graph: {
      name: 'tiny',
      nodes: g.nodes,
      initializers: g.initializers,
      inputs: [{ name: 'pixel_values', type: 'float32', shape: ['batch', 3, 224, 224] }],
      outputs: [{ name: 'image_embeds', type: 'float32', shape: ['batch', 8] }],
    },
  });
  await mkdir(benchDir, { recursive: true });
  await writeFile(file, bytes);
  return file;
}

/** An img2dataset corpus of 512x384 JPEGs (~58 KB, decode cost near a photo's), made once. */
function jpegCorpus(limit: number): string {
  const dir = path.join(root, 'data', 'bench-jpeg', String(limit));
  if (!existsSync(path.join(dir, '00000.parquet')))
    execFileSync(process.execPath, [path.join(root, 'bench', 'gpu', 'gen-corpus.mjs'), root, dir, String(limit), '500']);
  return dir;
}

async function stageBench(label: string, input: string, encoders: Record<string, unknown>): Promise<void> {
  const work = await mkdtemp(path.join(os.tmpdir(), 'megapairs-bench-embed-'));
  const config = parseConfig({
    run: { name: 'bench-embed' },
    input: { path: input },
    work: path.join(work, 'work'),
    output: path.join(work, 'out'),
    encoders: { decode_threads: Number(values['decode-threads']), ...encoders },
    runner: { concurrency },
  });
  const ctx = createContext(config);
  ctx.cacheDir = cacheDir;
  const stages = pipelineStages();
  const embed = stages.find((s) => s.name === 'embed')!;
  await runLocal(ctx, { stages: stages.slice(0, stages.indexOf(embed)), progress: new ProgressReporter(process.stderr, false) });
  const rows = (
    await Promise.all((await embed.plan(ctx)).map((n: number) => readParquet<CatalogRow>(ctx.work, ctx.layout.catalogPart(n), catalogSchema)))
  ).flat();
  const bytes = (await readImageBatch(ctx.input, rows)).filter((b): b is Buffer => !(b instanceof Error));
  const r = await resolveEncoders(config, cacheDir);
  const threads = decodeThreads(config.encoders.decode_threads);
  const loadBefore = load();

  // Decode + preprocess alone, every image for both image encoders, through the decode threads;
  // again after the stage, and the two averaged, so that a load that changes meanwhile (a shared
  // machine) moves the bound with the stage.
  // CPU time (every thread of this process) per image is counted too: it does not move with the
  // machine's load, so the stage's CPU against preprocessing's and the raw sessions' shows what
  // the stage adds, whatever the wall-clock ratios do on a busy machine.
  // Preprocessing as the stage does it: decode, resize and each encoder's tensor slot (image-tensor.ts).
  const tensors = (await openEncoderThreads(config, cacheDir)).images.map((e) => e.inputType as TensorType);
  const slots = (list: Buffer[]) => Promise.all(list.map((b) => slotsInPool({ bytes: new Uint8Array(b), specs: r.images, tensors, maxPixels: 1e8 }, threads)));
  const preprocess = async () => {
    const t0 = performance.now();
    await slots(bytes);
    return bytes.length / ((performance.now() - t0) / 1000);
  };
  await slots(bytes.slice(0, threads)); // warm the threads
  let cpu = process.cpuUsage();
  const preprocessBefore = await preprocess();
  const cpuPerImage = (images: number) => {
    const d = process.cpuUsage(cpu);
    cpu = process.cpuUsage();
    return (d.user + d.system) / 1000 / images;
  };
  const preprocessCpu = cpuPerImage(bytes.length);
  let t: number;

  // Raw sessions: the same number of images, in batches of each encoder's batch_size, tensors made beforehand.
  const secondsPerImage: number[] = [];
  let rawCpu = 0;
  for (const spec of [...r.images, r.caption]) {
    const e = await OnnxEncoder.open(spec, r.settings);
    const n = Math.min(spec.batchSize, rows.length);
    const batches = Math.max(1, Math.ceil(rows.length / n));
    const pixels = spec.kind === 'image' ? Float32Array.from({ length: n * 3 * spec.size ** 2 }, (_, i) => Math.sin(i)) : new Float32Array(0);
    const run = async () => {
      if (spec.kind === 'text') return (e as OnnxEncoder<TextEncoderSpec>).encodeTexts(rows.slice(0, n).map((x) => x.caption));
      return (e as OnnxEncoder<ImageEncoderSpec>).encodeImages(pixels, n);
    };
    await run(); // warm-up
    t = performance.now();
    cpu = process.cpuUsage();
    for (let b = 0; b < batches; b++) await run();
    secondsPerImage.push((performance.now() - t) / 1000 / (batches * n));
    rawCpu += cpuPerImage(batches * n);
  }
  const rawRate = 1 / secondsPerImage.reduce((a, b) => a + b, 0);

  // The embed stage itself, on the same catalog, its encoder threads started beforehand (sessions
  // loaded, above) as for every unit after a process's first.
  cpu = process.cpuUsage();
  const report = await runStage(ctx, embed, concurrency, new ProgressReporter(process.stderr, false));
  const stageRate = rows.length / report.seconds;
  const stageCpu = cpuPerImage(rows.length);
  const preprocessAfter = await preprocess();
  const preprocessRate = (preprocessBefore + preprocessAfter) / 2;
  const bound = Math.min(rawRate, preprocessRate);
  const sharedCores = 1 / (1 / rawRate + 1 / preprocessRate);
  console.log(
    `${label}: ${rows.length} images; embed stage ${stageRate.toFixed(1)} img/s; raw sessions together ${rawRate.toFixed(1)} img/s (per encoder ${secondsPerImage.map((s) => (1 / s).toFixed(1)).join(' / ')}); preprocessing on all cores ${preprocessRate.toFixed(1)} img/s (${preprocessBefore.toFixed(1)} before the stage, ${preprocessAfter.toFixed(1)} after); ` +
      `stage / min = ${(stageRate / bound).toFixed(2)} (goal >= 0.9: ${stageRate >= 0.9 * bound ? 'met' : 'NOT met'}); shared-cores bound ${sharedCores.toFixed(1)} img/s, stage = ${(stageRate / sharedCores).toFixed(2)} x it`,
  );
  console.log(
    `  CPU per image (all threads): preprocessing ${preprocessCpu.toFixed(2)} ms + raw sessions ${rawCpu.toFixed(2)} ms = ${(preprocessCpu + rawCpu).toFixed(2)} ms; the stage ${stageCpu.toFixed(2)} ms = ${(stageCpu / (preprocessCpu + rawCpu)).toFixed(2)} x the two`,
  );
  console.log(
    `  settings: decode threads ${threads}, intra_op_threads ${r.settings.intraOpThreads}, inter_op_threads ${r.settings.interOpThreads}, spin_wait ${r.settings.spinWait}, providers ${JSON.stringify(r.settings.executionProviders)}, batch sizes ${[...r.images, r.caption].map((e) => e.batchSize).join('/')}, concurrency ${concurrency}, cores ${os.availableParallelism()}, load ${loadBefore} before, ${load()} after`,
  );
  await rm(work, { recursive: true, force: true });
}

if (only.has('a')) {
  const limit = Number(values.limit);
  const sample = path.join(root, 'data', 'bench-sample', String(limit));
  await buildSampleCorpus({ outDir: sample, limit, shardSize: limit });
  await stageBench('(a) built-in models, openmoji PNGs', sample, {});
}
const tiny = await tinyImageModel();
const tinyDino = { model: tiny, preset: 'dinov2', batch_size: 64 };
if (only.has('b'))
  await stageBench('(b) tiny models (CLIP + DINOv2 preprocessing), 512x384 JPEGs', jpegCorpus(Number(values['jpeg-limit'])), {
    visual_semantic: { model: tiny, preset: 'clip', batch_size: 64 },
    visual_pattern: tinyDino,
  });
if (only.has('c')) {
  if (existsSync(vit))
    await stageBench('(c) ViT-B/16 random weights + tiny DINOv2-style tower, 512x384 JPEGs', jpegCorpus(Number(values['vit-limit'])), {
      visual_semantic: { model: vit, preset: 'clip', batch_size: 16 },
      visual_pattern: tinyDino,
    });
  else console.log(`(c) skipped: no ${vit}; make it with python3 tools/export_onnx.py eva-clip-image --random --out ${path.relative(root, vit)}`);
}
