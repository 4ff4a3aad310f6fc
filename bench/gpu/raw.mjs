// Raw onnxruntime-node throughput of one model on one execution provider: random inputs at each
// batch size, images (or texts) per second over a few seconds after two warm-up runs. The ceiling
// the embed stage is compared against (the stage adds decode, preprocess, I/O and scheduling).
// Usage: node raw.mjs <app dir> <model.onnx> <provider> <batches,comma> [seconds] [threads]
import { createRequire } from 'node:module';
import path from 'node:path';

const [appDir, model, provider, batchesArg, secondsArg, threadsArg] = process.argv.slice(2);
const ort = createRequire(path.resolve(appDir) + '/')('onnxruntime-node');
const seconds = Number(secondsArg ?? 5);
const opts = { executionProviders: [provider], graphOptimizationLevel: 'all' };
if (threadsArg) opts.intraOpNumThreads = Number(threadsArg);
const t0 = performance.now();
let s;
try {
  s = await ort.InferenceSession.create(model, opts);
} catch (e) {
  console.log(JSON.stringify({ model: path.basename(model), provider, error: String(e.message).slice(0, 600) }));
  process.exit(0);
}
const loadS = (performance.now() - t0) / 1000;
const inName = s.inputNames[0],
  outName = s.outputNames[0];
const meta = s.inputMetadata?.[0] ?? {};
const type = meta.type ?? (/fp16/.test(model) ? 'float16' : 'float32');
for (const b of batchesArg.split(',').map(Number)) {
  let feed;
  if (inName === 'input_ids') {
    const ids = new BigInt64Array(b * 77).map((_, i) => BigInt(i % 77 === 76 ? 49407 : 1 + ((i * 7919) % 49000)));
    feed = { [inName]: new ort.Tensor('int64', ids, [b, 77]) };
  } else if (type === 'float16') {
    const x = new Uint16Array(b * 3 * 224 * 224).map(() => 0x3800 + Math.floor(Math.random() * 255)); // ~0.5..0.56
    feed = { [inName]: new ort.Tensor('float16', x, [b, 3, 224, 224]) };
  } else {
    const x = new Float32Array(b * 3 * 224 * 224).map(() => Math.random() - 0.5);
    feed = { [inName]: new ort.Tensor('float32', x, [b, 3, 224, 224]) };
  }
  try {
    await s.run(feed);
    await s.run(feed);
    let n = 0;
    const start = performance.now();
    while (performance.now() - start < seconds * 1000) {
      await s.run(feed, [outName]);
      n += b;
    }
    const rate = n / ((performance.now() - start) / 1000);
    console.log(JSON.stringify({ model: path.basename(model), provider, batch: b, per_s: +rate.toFixed(1), load_s: +loadS.toFixed(1) }));
  } catch (e) {
    console.log(JSON.stringify({ model: path.basename(model), provider, batch: b, error: String(e.message).slice(0, 600) }));
  }
}
await s.release?.();
