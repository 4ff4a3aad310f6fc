// The embed stage on a GPU machine, from the compiled project (no tsx there): catalogs the corpus,
// measures decode + preprocessing alone on every core (the decode threads), then runs the embed
// stage with its encoder threads started beforehand, and prints one JSON line with both rates and
// the thread settings. The raw sessions come from raw.mjs, the same run.
// Usage: node stage.mjs <app dir> <corpus dir> <work dir> <label> '<encoders section as JSON>'
import { rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const [appDir, corpus, work, label, encodersJson] = process.argv.slice(2);
rmSync(path.join(work, label), { recursive: true, force: true }); // a fresh run: nothing to skip
const imp = (p) => import(path.join(path.resolve(appDir), 'dist', 'src', p));
const [{ parseConfig }, { createContext }, { pipelineStages }, { runLocal, runStage }, { ProgressReporter }, pool, threads, resolve, parquet, tables, bytesOf] =
  await Promise.all([
    imp('config/load.js'),
    imp('runner/context.js'),
    imp('pipeline.js'),
    imp('runner/local.js'),
    imp('runner/progress.js'),
    imp('encoders/decode-pool.js'),
    imp('encoders/encoder-thread.js'),
    imp('encoders/resolve.js'),
    imp('artifacts/parquet.js'),
    imp('artifacts/tables.js'),
    imp('corpus/image-bytes.js'),
  ]);
const config = parseConfig({
  run: { name: `gpu-check-${label}` },
  input: { path: corpus },
  work: path.join(work, label, 'work'),
  output: path.join(work, label, 'out'),
  encoders: JSON.parse(encodersJson),
  runner: { concurrency: 1 },
});
const ctx = createContext(config);
const quiet = new ProgressReporter(process.stderr, false);
const stages = pipelineStages();
const embed = stages.find((s) => s.name === 'embed');
await runLocal(ctx, { stages: stages.slice(0, stages.indexOf(embed)), progress: quiet });
const units = await embed.plan(ctx);
const rows = (await Promise.all(units.map((n) => parquet.readParquet(ctx.work, ctx.layout.catalogPart(n), tables.catalogSchema)))).flat();
const r = await resolve.resolveEncoders(config, ctx.cacheDir);
const n = pool.decodeThreads(config.encoders.decode_threads);

// Preprocessing alone on every core, as the stage does it (decode, resize, each encoder's tensor
// slot): at most 2,000 images, read beforehand. The encoder threads start first (their input types).
const tensors = (await threads.openEncoderThreads(config, ctx.cacheDir)).images.map((e) => e.inputType);
const sample = (await bytesOf.readImageBatch(ctx.input, rows.slice(0, 2000))).filter((b) => !(b instanceof Error));
const prep = (list) => Promise.all(list.map((b) => pool.slotsInPool({ bytes: new Uint8Array(b), specs: r.images, tensors, maxPixels: 1e8 }, n)));
await prep(sample.slice(0, n * 2));
const t = performance.now();
await prep(sample);
const preprocess = sample.length / ((performance.now() - t) / 1000);

const report = await runStage(ctx, embed, 1, quiet);
const s = r.settings;
console.log(
  JSON.stringify({
    stage: label,
    images: rows.length,
    per_s: +(rows.length / report.seconds).toFixed(1),
    preprocess_per_s: +preprocess.toFixed(1),
    decode_threads: n,
    providers: s.executionProviders,
    intra_op_threads: s.intraOpThreads,
    batch: [...r.images, r.caption].map((e) => e.batchSize),
    cores: os.availableParallelism(),
    load: os.loadavg().map((l) => +l.toFixed(1)),
  }),
);
process.exit(0);
