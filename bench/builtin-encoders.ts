// Evidence that the built-in encoders make MegaPairs mining meaningful: renders openmoji SVGs the
// way the embed stage does, embeds them (and their captions) with the generated ONNX models, and
// reports for K exact nearest neighbours how many queries find a target in the mining band
// (0.8, 0.96), how many neighbours are near-duplicates (>= 0.96), and how much the spaces agree.
//
//   npx tsx bench/builtin-encoders.ts [--n 600] [--k 20] [--examples 3] [--options '{"shape":{...}}']
//
// --options builds the models in memory with other descriptor constants (for tuning) instead of
// the shipped ones.
import { readFile, mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import ort from 'onnxruntime-node';
import { BUILTIN_IMAGE_PREPROCESS, buildBuiltinModel, ensureBuiltinModels, openmojiCaption } from '../src/encoders/builtin.ts';
import { preprocessRgb, writeChw } from '../src/encoders/image-preprocess.ts';
import { Tokenizer } from '../src/encoders/tokenizer.ts';
import { Rng } from '../src/util/rng.ts';

const BAND = [0.8, 0.96] as const;
const BATCH = 64;

const { values: args } = parseArgs({
  options: {
    n: { type: 'string', default: '600' },
    k: { type: 'string', default: '20' },
    examples: { type: 'string', default: '3' },
    options: { type: 'string' },
  },
});
const N = Number(args.n);
const K = Number(args.k);

interface Emoji {
  hexcode: string;
  annotation: string;
  tags?: string;
}

const require = createRequire(import.meta.url);
const svgDir = path.join(path.dirname(require.resolve('openmoji/data/openmoji.json')), '..', 'color', 'svg');
const all = JSON.parse(await readFile(require.resolve('openmoji/data/openmoji.json'), 'utf8')) as Emoji[];
const sample = Rng.for('bench builtin-encoders').sample(all, N);

// ---- models -------------------------------------------------------------------------------------

let tmp: string | undefined;
type Source = string | Uint8Array;
let shapeModel: Source, colourModel: Source, captionModel: Source, tokenizer: Tokenizer;
if (args.options) {
  const o = JSON.parse(args.options);
  shapeModel = (await buildBuiltinModel('shape', o)).model;
  colourModel = (await buildBuiltinModel('colour', o)).model;
  const c = await buildBuiltinModel('caption', o);
  captionModel = c.model;
  tokenizer = Tokenizer.fromJSON(JSON.parse(c.tokenizerJson!), 'caption tokenizer');
} else {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'megapairs-bench-'));
  const m = await ensureBuiltinModels(tmp);
  [shapeModel, colourModel, captionModel] = [m.shape, m.colour, m.caption];
  tokenizer = await Tokenizer.fromFile(m.tokenizer);
}
// Two calls because create() is overloaded on path vs bytes.
const session = (m: Source) => (typeof m === 'string' ? ort.InferenceSession.create(m) : ort.InferenceSession.create(m));

// ---- embed --------------------------------------------------------------------------------------

const pre = BUILTIN_IMAGE_PREPROCESS.shape;
if (JSON.stringify(BUILTIN_IMAGE_PREPROCESS.colour) !== JSON.stringify(BUILTIN_IMAGE_PREPROCESS.shape)) {
  throw new Error('the bench decodes once for both image models, which needs one preprocessing');
}
const plane = 3 * pre.size * pre.size;
const pixels = new Float32Array(N * plane);
const started = performance.now();
for (let i = 0; i < N; i++) {
  const svg = await readFile(path.join(svgDir, `${sample[i].hexcode}.svg`));
  writeChw(await preprocessRgb(svg, pre, 1e8), pre, pixels, i);
}
const renderMs = performance.now() - started;

async function embedImages(model: Source): Promise<{ vectors: Float32Array; dim: number; batchMs: number }> {
  const s = await session(model);
  const parts: Float32Array[] = [];
  let batchMs = Infinity;
  for (let at = 0; at < N; at += BATCH) {
    const n = Math.min(BATCH, N - at);
    const feed = new ort.Tensor('float32', pixels.subarray(at * plane, (at + n) * plane), [n, 3, pre.size, pre.size]);
    const t = performance.now();
    const out = (await s.run({ pixel_values: feed })).embedding;
    // Per 64 images, so a sample smaller than one batch still gets a time.
    batchMs = Math.min(batchMs, ((performance.now() - t) * BATCH) / n);
    parts.push(out.data as Float32Array);
  }
  const dim = parts[0].length / Math.min(BATCH, N);
  const vectors = new Float32Array(N * dim);
  parts.reduce((at, p) => (vectors.set(p, at), at + p.length), 0);
  return { vectors, dim, batchMs };
}

async function embedCaptions(texts: string[]): Promise<{ vectors: Float32Array; dim: number; batchMs: number }> {
  const s = await session(captionModel);
  const L = 77;
  const { ids, mask } = tokenizer.encodeBatch(texts, L);
  const t = performance.now();
  const out = (await s.run({ input_ids: new ort.Tensor('int64', ids, [N, L]), attention_mask: new ort.Tensor('int64', mask, [N, L]) })).embedding;
  const batchMs = ((performance.now() - t) * BATCH) / N;
  return { vectors: out.data as Float32Array, dim: Number(out.dims[1]), batchMs };
}

const captions = sample.map(openmojiCaption);
const spaces = {
  shape: await embedImages(shapeModel),
  colour: await embedImages(colourModel),
  caption: await embedCaptions(captions),
};

// ---- exact K nearest neighbours -----------------------------------------------------------------

interface Neighbours {
  ids: Int32Array; // [N, K]
  sims: Float32Array; // [N, K], descending
  pairMean: number; // mean cosine over all pairs
}

function knn({ vectors, dim }: { vectors: Float32Array; dim: number }): Neighbours {
  const ids = new Int32Array(N * K);
  const sims = new Float32Array(N * K);
  let pairSum = 0;
  const row = new Float32Array(N);
  for (let q = 0; q < N; q++) {
    for (let j = 0; j < N; j++) {
      let s = 0;
      for (let d = 0; d < dim; d++) s += vectors[q * dim + d] * vectors[j * dim + d];
      row[j] = s;
      if (j !== q) pairSum += s;
    }
    row[q] = -Infinity;
    const order = Array.from(row.keys())
      .sort((a, b) => row[b] - row[a])
      .slice(0, K);
    order.forEach((j, r) => ((ids[q * K + r] = j), (sims[q * K + r] = row[j])));
  }
  return { ids, sims, pairMean: pairSum / (N * (N - 1)) };
}

const neighbours = Object.fromEntries(Object.entries(spaces).map(([name, s]) => [name, knn(s)])) as Record<keyof typeof spaces, Neighbours>;

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
const inBand = (s: number) => s > BAND[0] && s < BAND[1];

console.log(`built-in encoders on ${N} openmoji images (seeded sample of ${all.length}), K=${K}, band (${BAND[0]}, ${BAND[1]})`);
console.log(`rendering: ${(renderMs / N).toFixed(1)} ms/image (sharp, ${pre.size}x${pre.size}, ${pre.crop}, on white)\n`);
console.log('space    dim  batch64  pair mean  top1 median  queries w/ in-band  neighbours in band  neighbours >= 0.96');
for (const [name, nb] of Object.entries(neighbours) as Array<[keyof typeof spaces, Neighbours]>) {
  let withBand = 0;
  let band = 0;
  let dup = 0;
  const top1: number[] = [];
  for (let q = 0; q < N; q++) {
    const s = nb.sims.subarray(q * K, (q + 1) * K);
    top1.push(s[0]);
    if (s.some(inBand)) withBand++;
    band += s.filter(inBand).length;
    dup += s.filter((v) => v >= BAND[1]).length;
  }
  top1.sort((a, b) => a - b);
  const sp = spaces[name];
  console.log(
    `${name.padEnd(8)} ${String(sp.dim).padStart(3)} ${sp.batchMs.toFixed(1).padStart(6)}ms ${nb.pairMean.toFixed(3).padStart(10)} ${top1[N >> 1].toFixed(3).padStart(12)} ` +
      `${pct(withBand / N).padStart(19)} ${pct(band / (N * K)).padStart(19)} ${pct(dup / (N * K)).padStart(19)}`,
  );
}

// How different the spaces are: shared neighbours among the top K, and shared in-band targets.
console.log('\noverlap of neighbour sets (mean |A ∩ B| / K over queries; in-band: shared targets / targets of A)');
const names = Object.keys(neighbours) as Array<keyof typeof spaces>;
for (let a = 0; a < names.length; a++) {
  for (let b = a + 1; b < names.length; b++) {
    const [A, B] = [neighbours[names[a]], neighbours[names[b]]];
    let shared = 0;
    let bandA = 0;
    let bandShared = 0;
    for (let q = 0; q < N; q++) {
      const setB = new Set(B.ids.subarray(q * K, (q + 1) * K));
      const bandB = new Set(Array.from(B.ids.subarray(q * K, (q + 1) * K)).filter((_, r) => inBand(B.sims[q * K + r])));
      for (let r = 0; r < K; r++) {
        const j = A.ids[q * K + r];
        if (setB.has(j)) shared++;
        if (inBand(A.sims[q * K + r])) {
          bandA++;
          if (bandB.has(j)) bandShared++;
        }
      }
    }
    console.log(`  ${names[a]} / ${names[b]}: top-${K} ${pct(shared / (N * K))}, in-band ${pct(bandA ? bandShared / bandA : 0)}`);
  }
}

// A few mined pairs per space, to judge by eye.
const examples = Number(args.examples);
if (examples > 0) {
  console.log('\nexample in-band pairs (query -> target, cosine)');
  for (const name of names) {
    const nb = neighbours[name];
    const shown: string[] = [];
    for (let q = 0; q < N && shown.length < examples; q += 7) {
      for (let r = 0; r < K; r++) {
        const s = nb.sims[q * K + r];
        if (inBand(s)) {
          shown.push(`    ${captions[q].slice(0, 50)}  ->  ${captions[nb.ids[q * K + r]].slice(0, 50)}  (${s.toFixed(3)})`);
          break;
        }
      }
    }
    console.log(`  ${name}:\n${shown.join('\n')}`);
  }
}

if (tmp) await rm(tmp, { recursive: true, force: true });
