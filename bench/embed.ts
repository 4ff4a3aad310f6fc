// The embed stage against its two limits, side by side in one run: raw onnxruntime sessions
// (pre-made tensors, each encoder at its batch_size, all three encoders per image) and decode +
// preprocess alone (the decode threads), then the embed stage itself; goal: stage >= 0.9 x the
// slower of the two. Two setups: (a) the built-in models (decode-bound) and (b) a ViT-B/16-sized
// random-weight image tower (model-bound), made with
//   /usr/bin/python3 tools/export_onnx.py eva-clip-image --random --out data/.cache/bench/vit-b16.onnx
// On the CPU provider decoding and inference share the same cores, so the stage can reach at most
// 1 / (1/decode + 1/raw) (printed as the shared-cores bound); on a GPU inference leaves the cores
// to decoding. Small limits measure mostly the stage's start (threads, sessions): 2,000 images by
// default. Usage: npx tsx bench/embed.ts [--limit 2000] [--vit-limit 64] [--vit path.onnx] [--concurrency 1]
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { readParquet } from '../src/artifacts/parquet.ts';
import { parseConfig } from '../src/config/load.ts';
import { readImageBatch } from '../src/corpus/image-bytes.ts';
import { decodeThreads, preprocessInPool } from '../src/encoders/decode-pool.ts';
import { OnnxEncoder } from '../src/encoders/onnx-encoder.ts';
import { resolveEncoders, type ImageEncoderSpec, type TextEncoderSpec } from '../src/encoders/resolve.ts';
import { pipelineStages } from '../src/pipeline.ts';
import { createContext } from '../src/runner/context.ts';
import { runLocal, runStage } from '../src/runner/local.ts';
import { ProgressReporter } from '../src/runner/progress.ts';
import { buildSampleCorpus } from '../src/sample/openmoji.ts';
import { catalogSchema, type CatalogRow } from '../src/artifacts/tables.ts';
import { benchPreprocess } from './preprocess.ts';

const { values } = parseArgs({
  options: {
    limit: { type: 'string', default: '2000' },
    'vit-limit': { type: 'string', default: '64' },
    vit: { type: 'string' },
    concurrency: { type: 'string', default: '1' },
  },
});
const root = path.join(import.meta.dirname, '..');
const cacheDir = path.join(root, 'data', '.cache');
const vit = values.vit ?? path.join(cacheDir, 'bench', 'vit-b16.onnx');
const concurrency = Number(values.concurrency);

// First, per core: the project's preprocessing against sharp's decode and sharp's own resize.
await benchPreprocess();

async function bench(label: string, encoders: Record<string, unknown>, limit: number): Promise<void> {
  const sample = path.join(root, 'data', 'bench-sample', String(limit));
  await buildSampleCorpus({ outDir: sample, limit, shardSize: limit });
  const work = await mkdtemp(path.join(os.tmpdir(), 'megapairs-bench-embed-'));
  const config = parseConfig({
    run: { name: 'bench-embed' },
    input: { path: sample },
    work: path.join(work, 'work'),
    output: path.join(work, 'out'),
    encoders,
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
  const images = await Promise.all(r.images.map((s) => OnnxEncoder.open(s, r.settings)));
  const caption = await OnnxEncoder.open(r.caption, r.settings);
  const threads = decodeThreads(config.encoders.decode_threads);

  // Decode + preprocess alone, every image for both image encoders, through the decode threads.
  await Promise.all(bytes.slice(0, threads).map((b) => preprocessInPool({ bytes: new Uint8Array(b), specs: r.images, maxPixels: 1e8 }, threads))); // warm the threads
  let t = performance.now();
  await Promise.all(bytes.map((b) => preprocessInPool({ bytes: new Uint8Array(b), specs: r.images, maxPixels: 1e8 }, threads)));
  const decodeRate = bytes.length / ((performance.now() - t) / 1000);

  // Raw sessions: the same number of images, in batches of each encoder's batch_size, tensors made beforehand.
  const secondsPerImage: number[] = [];
  for (const e of [...images, caption]) {
    const n = Math.min(e.spec.batchSize, rows.length);
    const batches = Math.max(1, Math.ceil(rows.length / n));
    const run = async () => {
      if (e.spec.kind === 'text') return (e as OnnxEncoder<TextEncoderSpec>).encodeTexts(rows.slice(0, n).map((x) => x.caption));
      return (e as OnnxEncoder<ImageEncoderSpec>).encodeImages(pixels, n);
    };
    const pixels =
      e.spec.kind === 'image' ? Float32Array.from({ length: n * 3 * (e.spec as ImageEncoderSpec).size ** 2 }, (_, i) => Math.sin(i)) : new Float32Array(0);
    await run(); // warm-up
    t = performance.now();
    for (let b = 0; b < batches; b++) await run();
    secondsPerImage.push((performance.now() - t) / 1000 / (batches * n));
  }
  const rawRate = 1 / secondsPerImage.reduce((a, b) => a + b, 0);

  // The embed stage itself, on the same catalog.
  const report = await runStage(ctx, embed, concurrency, new ProgressReporter(process.stderr, false));
  const stageRate = rows.length / report.seconds;
  const goal = 0.9 * Math.min(rawRate, decodeRate);
  const sharedCores = 1 / (1 / rawRate + 1 / decodeRate);
  console.log(
    `${label}: ${rows.length} images; raw sessions ${rawRate.toFixed(1)} img/s (per encoder ${secondsPerImage.map((s) => (1 / s).toFixed(0)).join(' / ')}), decode+preprocess ${decodeRate.toFixed(1)} img/s (${threads} threads), embed stage ${stageRate.toFixed(1)} img/s = ${(stageRate / Math.min(rawRate, decodeRate)).toFixed(2)} x the slower; goal >= 0.9: ${stageRate >= goal ? 'met' : 'NOT met'}; ` +
      `shared-cores bound ${sharedCores.toFixed(1)} img/s, stage = ${(stageRate / sharedCores).toFixed(2)} x it`,
  );
  console.log(
    `  settings: intra_op_threads ${r.settings.intraOpThreads}, inter_op_threads ${r.settings.interOpThreads}, providers ${JSON.stringify(r.settings.executionProviders)}, batch sizes ${[...images, caption].map((e) => e.spec.batchSize).join('/')}, concurrency ${concurrency}, cores ${os.availableParallelism()}, load ${os
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(' ')}`,
  );
  await rm(work, { recursive: true, force: true });
}

// Each setup with onnxruntime's threads spin-waiting and not (encoders.spin_wait), side by side.
for (const spin_wait of [false, true]) await bench(`(a) built-in models, spin_wait ${spin_wait}`, { spin_wait }, Number(values.limit));
if (existsSync(vit)) {
  for (const spin_wait of [false, true])
    await bench(
      `(b) ViT-B/16 random-weight export, spin_wait ${spin_wait}`,
      { spin_wait, visual_semantic: { model: vit, preset: 'clip', batch_size: 16 } },
      Number(values['vit-limit']),
    );
} else {
  console.log(`(b) skipped: no ${vit}; make it with /usr/bin/python3 tools/export_onnx.py eva-clip-image --random --out ${path.relative(root, vit)}`);
}
