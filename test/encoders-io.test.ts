// Model I/O as exported: fp16 exports, hidden-state outputs pooled (cls, mean, eot), int32 ids,
// and every mismatch reported by preflight with the config key and the model's real inputs and
// outputs. Real onnxruntime sessions over models written by the project's ONNX writer.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { PassThrough } from 'node:stream';
import { readParquet } from '../src/artifacts/parquet.ts';
import { parseConfig } from '../src/config/load.ts';
import { readImageBatch } from '../src/corpus/image-bytes.ts';
import { preprocessRgb, writeChw } from '../src/encoders/image-preprocess.ts';
import { pipelineStages } from '../src/pipeline.ts';
import { createContext } from '../src/runner/context.ts';
import { runLocal } from '../src/runner/local.ts';
import { ProgressReporter } from '../src/runner/progress.ts';
import { catalogSchema, type CatalogRow } from '../src/artifacts/tables.ts';
import { readPartVectors } from '../src/stages/embeddings.ts';
import { demoConfig, sampleSlice } from './helpers.ts';
import { ensureBuiltinModels, type BuiltinModels } from '../src/encoders/builtin.ts';
import { fromHalf, toHalf } from '../src/util/float16.ts';
import { loadTokenizer, OnnxEncoder } from '../src/encoders/onnx-encoder.ts';
import { resolveEncoders, type ImageEncoderSpec, type TextEncoderSpec } from '../src/encoders/resolve.ts';
import { parseExecutionProviders, sessionSettings } from '../src/encoders/sessions.ts';
import { checkEncoders } from '../src/preflight/encoders.ts';
import { DIM, fp16ImageModel, hiddenStateImageModel, hiddenStateTextModel, IMAGE_SIZE, weights } from './encoder-models.ts';

let tmp: string;
let builtins: BuiltinModels;
let vocab: number;
const table = () => weights(vocab, DIM, 3);
const files = { fp16: '', hidden: '', text64: '', text32: '' };

before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'megapairs-encoders-io-'));
  builtins = await ensureBuiltinModels(path.join(tmp, 'models'));
  vocab = (await loadTokenizer(builtins.tokenizer)).vocabSize;
  files.fp16 = path.join(tmp, 'fp16.onnx');
  files.hidden = path.join(tmp, 'hidden.onnx');
  files.text64 = path.join(tmp, 'text64.onnx');
  files.text32 = path.join(tmp, 'text32.onnx');
  await writeFile(files.fp16, fp16ImageModel());
  await writeFile(files.hidden, hiddenStateImageModel());
  await writeFile(files.text64, hiddenStateTextModel(vocab, table()));
  await writeFile(files.text32, hiddenStateTextModel(vocab, table(), 'int32'));
});
after(() => rm(tmp, { recursive: true, force: true }));

const config = (encoders: Record<string, unknown>) => parseConfig({ input: { path: tmp }, work: tmp, output: tmp, encoders }, { baseDir: tmp });
const image = (model: string, extra: Record<string, unknown> = {}) => ({ model, size: IMAGE_SIZE, mean: [0, 0, 0], std: [1, 1, 1], ...extra });
const text = (model: string, extra: Record<string, unknown> = {}) => ({ model, tokenizer: builtins.tokenizer, max_length: 16, pooling: 'eot', ...extra });
const unit = (v: ArrayLike<number>) => {
  const n = Math.hypot(...Array.from(v));
  return Array.from(v, (x) => x / n);
};
const close = (a: ArrayLike<number>, b: ArrayLike<number>, tol: number, what: string) =>
  Array.from(a).forEach((x, i) => assert.ok(Math.abs(x - b[i]) <= tol, `${what}[${i}]: ${x} vs ${b[i]}`));

/** Pixels [n, 3, S, S]: image r has value (r + 1) * 0.1 * (c + 1) + p / 1000 at pixel p of channel c. */
function pixels(n: number): Float32Array {
  const plane = IMAGE_SIZE * IMAGE_SIZE;
  return Float32Array.from({ length: n * 3 * plane }, (_, i) => {
    const r = Math.floor(i / (3 * plane));
    const c = Math.floor(i / plane) % 3;
    return (r + 1) * 0.1 * (c + 1) + (i % plane) / 1000;
  });
}
const px = (p: Float32Array, r: number, c: number, i: number) => p[(r * 3 + c) * IMAGE_SIZE * IMAGE_SIZE + i];

async function openImage(encoders: Record<string, unknown>, which = 0): Promise<OnnxEncoder<ImageEncoderSpec>> {
  const r = await resolveEncoders(config(encoders), tmp);
  return OnnxEncoder.open(r.images[which], r.settings);
}
async function openText(encoders: Record<string, unknown>): Promise<OnnxEncoder<TextEncoderSpec>> {
  const r = await resolveEncoders(config(encoders), tmp);
  return OnnxEncoder.open(r.caption, r.settings);
}

describe('model I/O as exported', () => {
  test('an fp16 export gets fp16 pixels and its fp16 output is read back', async () => {
    const e = await openImage({ visual_semantic: image(files.fp16) });
    assert.deepEqual(e.io.input, { name: 'pixel_values', type: 'float16' });
    const p = pixels(3);
    const { data, dim } = await e.encodeImages(p, 3);
    assert.equal(dim, DIM);
    const w = weights(3, DIM);
    for (let r = 0; r < 3; r++) {
      const means = [0, 1, 2].map(
        (c) => Array.from({ length: IMAGE_SIZE * IMAGE_SIZE }, (_, i) => fromHalf(toHalf(px(p, r, c, i)))).reduce((a, b) => a + b) / (IMAGE_SIZE * IMAGE_SIZE),
      );
      const expected = unit(Array.from({ length: DIM }, (_, d) => means.reduce((s, m, c) => s + m * w[c * DIM + d], 0)));
      close(data.subarray(r * DIM, (r + 1) * DIM), expected, 2e-3, `image ${r}`);
    }
  });

  test('hidden states [N, T, D] pooled by cls (token 0) and by mean (all tokens)', async () => {
    const p = pixels(2);
    const w = weights(3, DIM, 2);
    const token = (r: number, i: number) => Array.from({ length: DIM }, (_, d) => [0, 1, 2].reduce((s, c) => s + px(p, r, c, i) * w[c * DIM + d], 0));
    const cls = await openImage({ visual_pattern: image(files.hidden, { pooling: 'cls' }) }, 1);
    const mean = await openImage({ visual_pattern: image(files.hidden, { pooling: 'mean' }) }, 1);
    const [c, m] = [await cls.encodeImages(p, 2), await mean.encodeImages(p, 2)];
    for (let r = 0; r < 2; r++) {
      close(c.data.subarray(r * DIM, (r + 1) * DIM), unit(token(r, 0)), 1e-5, `cls ${r}`);
      const all = Array.from({ length: IMAGE_SIZE * IMAGE_SIZE }, (_, i) => token(r, i));
      close(m.data.subarray(r * DIM, (r + 1) * DIM), unit(all[0].map((_, d) => all.reduce((s, t) => s + t[d], 0))), 1e-5, `mean ${r}`);
    }
  });

  test('text hidden states pooled at the end-of-text token (highest id) and by the attention mask; int64 and int32 ids', async () => {
    const tokenizer = await loadTokenizer(builtins.tokenizer);
    const texts = ['grinning face: happy', 'red apple'];
    const t = table();
    const row = (id: number) => Array.from(t.subarray(id * DIM, (id + 1) * DIM));
    for (const model of [files.text64, files.text32]) {
      const eot = await openText({ caption: text(model) });
      const { data } = await eot.encodeTexts(texts);
      // CLIP's eot: the highest id in the row is <|endoftext|>, the last id of the vocabulary.
      for (let r = 0; r < 2; r++) close(data.subarray(r * DIM, (r + 1) * DIM), unit(row(vocab - 1)), 1e-5, `eot ${r} (${path.basename(model)})`);
      const mean = await openText({ caption: text(model, { pooling: 'mean' }) });
      const m = await mean.encodeTexts(texts);
      for (const [r, s] of texts.entries()) {
        const { ids, mask } = tokenizer.encode(s, 16);
        const real = Array.from(ids)
          .filter((_, i) => mask[i] === 1n)
          .map(Number);
        close(m.data.subarray(r * DIM, (r + 1) * DIM), unit(row(real[0]).map((_, d) => real.reduce((a, id) => a + row(id)[d], 0))), 1e-5, `mean ${r}`);
      }
    }
  });
});

describe('preflight names every mismatch', () => {
  /** The first problem per key. */
  const byKey = <P extends { key: string }>(ps: P[]) => Object.fromEntries(ps.reverse().map((p) => [p.key, p])) as Record<string, P>;

  test('hidden states without pooling, a wrong input name, a wrong size, a missing mask input', async () => {
    const problems = await checkEncoders(
      config({
        visual_semantic: image(files.fp16, { input_name: 'images', size: 16 }),
        visual_pattern: image(files.hidden),
        caption: text(files.text64, { attention_mask_name: 'mask' }),
      }),
      tmp,
    );
    const p = byKey(problems);
    assert.match(p['encoders.visual_semantic.input_name'].found, /no tensor input "images".*inputs: pixel_values float16 \[batch, 3, 8, 8\]/);
    assert.match(p['encoders.visual_pattern.pooling'].found, /gives hidden states float32 \[batch, 64, 4\]/);
    assert.match(p['encoders.visual_pattern.pooling'].expected, /pooling: cls/);
    assert.match(p['encoders.caption.attention_mask_name'].found, /no input "mask".*inputs: input_ids int64 \[batch, sequence\], attention_mask int64/);
    assert.ok(
      problems.every((q) => q.key.startsWith('encoders.') && q.found && q.expected),
      JSON.stringify(problems, null, 1),
    );
  });

  test('pooling on an already pooled output, and a static size that differs', async () => {
    const p = byKey(
      await checkEncoders(config({ visual_semantic: image(files.fp16, { pooling: 'cls' }), visual_pattern: image(files.hidden, { pooling: 'cls' }) }), tmp),
    );
    assert.match(p['encoders.visual_semantic.pooling'].found, /already pooled: float16 \[batch, 4\]/);
    assert.deepEqual(Object.keys(p).sort(), ['encoders.visual_semantic.pooling']);
    const q = byKey(await checkEncoders(config({ visual_semantic: image(files.fp16, { size: 16 }) }), tmp));
    assert.match(q['encoders.visual_semantic.size'].found, /16, but input "pixel_values" is 8 x 8/);
  });

  test('a config that fits passes, with one real batch through each model', async () => {
    const problems = await checkEncoders(
      config({ visual_semantic: image(files.fp16), visual_pattern: image(files.hidden, { pooling: 'cls' }), caption: text(files.text32) }),
      tmp,
    );
    assert.deepEqual(problems, []);
  });

  test('execution providers: a device as cuda:1; an unknown name fails naming the key and the known providers', async () => {
    assert.deepEqual(parseExecutionProviders(['cuda:1', 'cpu'], 'encoders.execution_providers'), [{ name: 'cuda', deviceId: 1 }, 'cpu']);
    const problems = await checkEncoders(config({ execution_providers: ['cdua', 'cpu'] }), tmp);
    assert.equal(problems.length, 1);
    assert.equal(problems[0].key, 'encoders.execution_providers');
    assert.match(problems[0].found, /unknown execution provider "cdua".*knows: cpu, webgpu, cuda/);
  });

  test('the process device (--gpu, MEGAPAIRS_GPU): device-indexed providers get it; named twice, or for providers without one, it is refused', () => {
    const cuda = config({ execution_providers: ['cuda', 'cpu'] });
    const providers = (c: typeof cuda, env: NodeJS.ProcessEnv = {}) => sessionSettings(c, env).executionProviders;
    assert.deepEqual(providers(cuda), ['cuda', 'cpu']);
    assert.deepEqual(providers({ ...cuda, gpu: 3 }), [{ name: 'cuda', deviceId: 3 }, 'cpu']);
    assert.deepEqual(providers(cuda, { MEGAPAIRS_GPU: '2' }), [{ name: 'cuda', deviceId: 2 }, 'cpu']);
    assert.deepEqual(sessionSettings({ ...cuda, gpu: 3 }, { MEGAPAIRS_GPU: '2' }).device, { id: 3, from: '--gpu 3' }, 'the flag wins');
    assert.deepEqual(providers(config({}), { MEGAPAIRS_EXECUTION_PROVIDERS: 'tensorrt,cuda,cpu', MEGAPAIRS_GPU: '1' }), [
      { name: 'tensorrt', deviceId: 1 },
      { name: 'cuda', deviceId: 1 },
      'cpu',
    ]);
    assert.throws(
      () => providers({ ...config({ execution_providers: ['cuda:1', 'cpu'] }), gpu: 3 }),
      /encoders\.execution_providers names the device "cuda:1" and --gpu 3 names device 3: give the device in one place/,
    );
    assert.throws(
      () => providers(config({}), { MEGAPAIRS_GPU: '1' }),
      /MEGAPAIRS_GPU=1 names a device, but none of the execution providers \[cpu\] from MEGAPAIRS_EXECUTION_PROVIDERS takes one/,
    );
    assert.throws(() => providers(cuda, { MEGAPAIRS_GPU: 'first' }), /MEGAPAIRS_GPU must be a device number \(0, 1, \.\.\.\), not "first"/);
  });
});

describe('the embed stage with exported models', () => {
  test('fp16 image, hidden-state cls and eot text exports, each at its own batch size: every row as encoding it alone', async () => {
    const input = await sampleSlice();
    const root = path.join(tmp, 'run');
    const encoders = {
      visual_semantic: image(files.fp16, { batch_size: 7 }),
      visual_pattern: image(files.hidden, { pooling: 'cls', batch_size: 5, resize: 10, interpolation: 'bilinear' }),
      caption: text(files.text32, { batch_size: 3 }),
      decode_threads: 2,
      prefetch_batches: 1,
    };
    const ctx = createContext(demoConfig(input, root, { encoders }));
    ctx.cacheDir = tmp;
    const stages = pipelineStages();
    await runLocal(ctx, { stages: stages.slice(0, stages.findIndex((s) => s.name === 'embed') + 1), progress: new ProgressReporter(new PassThrough(), false) });
    const r = await resolveEncoders(ctx.config, tmp);
    const rows = await readParquet<CatalogRow>(ctx.work, ctx.layout.catalogPart(0), catalogSchema);
    const bytes = await readImageBatch(ctx.input, rows);
    for (const [k, name] of (['visual_semantic', 'visual_pattern'] as const).entries()) {
      const { data, dim, mask } = await readPartVectors(ctx, name, 0);
      assert.equal(dim, DIM);
      const e = await OnnxEncoder.open(r.images[k], r.settings);
      for (const i of [0, 6, 7, rows.length - 1]) {
        assert.equal(mask[i], 1);
        const px = new Float32Array(3 * IMAGE_SIZE * IMAGE_SIZE);
        writeChw(await preprocessRgb(bytes[i] as Buffer, r.images[k], 1e8), r.images[k], px, 0);
        close(data.subarray(i * DIM, (i + 1) * DIM), (await e.encodeImages(px, 1)).data, 1e-5, `${name} row ${i}`);
      }
    }
    const caption = await readPartVectors(ctx, 'caption', 0);
    const t = await OnnxEncoder.open(r.caption, r.settings);
    for (const i of [0, 4, rows.length - 1])
      close(caption.data.subarray(i * DIM, (i + 1) * DIM), (await t.encodeTexts([rows[i].caption])).data, 1e-5, `caption row ${i}`);
  });
});
