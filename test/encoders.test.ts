// The built-in encoders, the ONNX writer and the tokenizer, run through real onnxruntime sessions.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import ort from 'onnxruntime-node';
import { BUILTIN_IMAGE_PREPROCESS, ensureBuiltinModels, type BuiltinModels } from '../src/encoders/builtin.ts';
import { decodeThreads } from '../src/encoders/decode-pool.ts';
import { preprocessRgb, writeChw } from '../src/encoders/image-preprocess.ts';
import { attr, encodeModel, GraphBuilder } from '../src/encoders/onnx-writer.ts';
import { bytesToUnicode, Tokenizer } from '../src/encoders/tokenizer.ts';

let tmp: string;
let models: BuiltinModels;
const sessions: Partial<Record<'shape' | 'colour' | 'caption', ort.InferenceSession>> = {};

before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'megapairs-encoders-'));
  models = await ensureBuiltinModels(path.join(tmp, 'a'));
  for (const name of ['shape', 'colour', 'caption'] as const) sessions[name] = await ort.InferenceSession.create(models[name]);
});
after(async () => {
  await rm(tmp, { recursive: true, force: true });
});

const dot = (a: Float32Array, b: Float32Array) => a.reduce((s, v, i) => s + v * b[i], 0);

/** Rows of a [n, d] output. */
function rows(t: ort.Tensor): Float32Array[] {
  const [n, d] = t.dims.map(Number);
  return Array.from({ length: n }, (_, i) => (t.data as Float32Array).slice(i * d, (i + 1) * d));
}

// ---- images ---------------------------------------------------------------------------------------

const svg = (body: string) => `<svg xmlns="http://www.w3.org/2000/svg" width="72" height="72" viewBox="0 0 72 72">${body}</svg>`;
const circle = (fill: string) => svg(`<circle cx="36" cy="36" r="24" fill="${fill}" stroke="#000" stroke-width="2"/>`);
const star = (fill: string) =>
  svg(`<polygon points="36,8 43,28 64,28 47,40 53,62 36,49 19,62 25,40 8,28 29,28" fill="${fill}" stroke="#000" stroke-width="2"/>`);
const RED = '#d22f27';
const BLUE = '#1e50a0';

/** The embed stage's own preprocessing for the built-in models (decodeRgb, writeChw), on white. */
async function pixelValues(svgs: string[]): Promise<ort.Tensor> {
  const pre = BUILTIN_IMAGE_PREPROCESS.shape;
  const out = new Float32Array(svgs.length * 3 * pre.size * pre.size);
  for (const [i, s] of svgs.entries()) writeChw(await preprocessRgb(Buffer.from(s), pre, 1e8), pre, out, i);
  return new ort.Tensor('float32', out, [svgs.length, 3, pre.size, pre.size]);
}

async function embedImages(model: 'shape' | 'colour', svgs: string[]): Promise<Float32Array[]> {
  const out = await sessions[model]!.run({ pixel_values: await pixelValues(svgs) });
  return rows(out.embedding);
}

describe('built-in image models', () => {
  test('take pixel_values [batch, 3, S, S] and give unit-norm embedding [batch, D]', async () => {
    for (const model of ['shape', 'colour'] as const) {
      const s = sessions[model]!;
      assert.deepEqual(s.inputNames, ['pixel_values']);
      assert.deepEqual(s.outputNames, ['embedding']);
      const vectors = await embedImages(model, [circle(RED), star(BLUE), svg('')]);
      assert.equal(vectors.length, 3);
      assert.ok(vectors[0].length >= 128 && vectors[0].length <= 1024, `${model} dim ${vectors[0].length}`);
      for (const v of vectors.slice(0, 2)) assert.ok(Math.abs(Math.sqrt(dot(v, v)) - 1) < 1e-4, `${model} norm ${Math.sqrt(dot(v, v))}`);
      // A blank image has nothing to describe: a finite (zero or unit) vector, never NaN.
      assert.ok(vectors[2].every(Number.isFinite), `${model} blank image gives NaN`);
    }
  });

  test('shape space follows the outline, colour space follows the colours', async () => {
    const [shapeCircleRed, shapeCircleBlue, shapeStarRed] = await embedImages('shape', [circle(RED), circle(BLUE), star(RED)]);
    const [colourCircleRed, colourCircleBlue, colourStarRed] = await embedImages('colour', [circle(RED), circle(BLUE), star(RED)]);
    // Same shape, different colour: close in shape space, far in colour space.
    const sameShape = { shape: dot(shapeCircleRed, shapeCircleBlue), colour: dot(colourCircleRed, colourCircleBlue) };
    assert.ok(sameShape.shape > sameShape.colour, `same shape, other colour: ${JSON.stringify(sameShape)}`);
    assert.ok(sameShape.shape > 0.9, `recolouring should barely move the shape vector: ${sameShape.shape}`);
    // Same colour, different shape: closer in colour space than in shape space.
    const sameColour = { shape: dot(shapeCircleRed, shapeStarRed), colour: dot(colourCircleRed, colourStarRed) };
    assert.ok(sameColour.colour > sameColour.shape, `same colour, other shape: ${JSON.stringify(sameColour)}`);
  });

  // Speed is measured in bench/builtin-encoders.ts, never asserted here.
  test('a batch of 64 gives each image the vector it gets alone', async () => {
    const images = Array.from({ length: 64 }, (_, i) => (i % 2 ? circle(RED) : star(BLUE)));
    for (const model of ['shape', 'colour'] as const) {
      const batch = rows((await sessions[model]!.run({ pixel_values: await pixelValues(images) })).embedding);
      assert.equal(batch.length, 64);
      for (const i of [0, 1, 63]) {
        const [alone] = rows((await sessions[model]!.run({ pixel_values: await pixelValues([images[i]]) })).embedding);
        batch[i].forEach((x, d) => assert.ok(Math.abs(x - alone[d]) < 1e-5, `${model}: image ${i} differs in a batch at dim ${d}`));
      }
    }
  });
});

// ---- caption --------------------------------------------------------------------------------------

describe('built-in caption model and tokenizer', () => {
  let captionTokenizer: Promise<Tokenizer> | undefined; // read once, as the embed stage does
  async function embedTexts(texts: string[], maxLength = 32): Promise<Float32Array[]> {
    captionTokenizer ??= Tokenizer.fromFile(models.tokenizer);
    const { ids, mask } = (await captionTokenizer).encodeBatch(texts, maxLength);
    const dims = [texts.length, maxLength];
    const out = await sessions.caption!.run({ input_ids: new ort.Tensor('int64', ids, dims), attention_mask: new ort.Tensor('int64', mask, dims) });
    return rows(out.embedding);
  }

  test('takes input_ids and attention_mask, gives unit-norm vectors', async () => {
    assert.deepEqual([...sessions.caption!.inputNames].sort(), ['attention_mask', 'input_ids']);
    const [v, empty] = await embedTexts(['grinning face: happy, smile', '']);
    assert.ok(Math.abs(Math.sqrt(dot(v, v)) - 1) < 1e-4);
    assert.ok(
      empty.every((x) => x === 0),
      'an empty caption gives the zero vector, not NaN',
    );
  });

  test('texts that share words are closer than unrelated ones', async () => {
    const [apple, greenApple, rocket] = await embedTexts(['red apple: fruit, food', 'green apple: fruit, food', 'rocket: launch, space']);
    assert.ok(dot(apple, greenApple) > dot(apple, rocket) + 0.3, `${dot(apple, greenApple)} vs ${dot(apple, rocket)}`);
  });

  test('padding does not change the embedding', async () => {
    const [short] = await embedTexts(['pile of poo: dung, face, monster'], 16);
    const [long] = await embedTexts(['pile of poo: dung, face, monster'], 77);
    assert.ok(dot(short, long) > 0.99999, String(dot(short, long)));
  });

  test('the caption tokenizer is a CLIP-format byte-level BPE, one table row per id', async () => {
    const json = JSON.parse(await readFile(models.tokenizer, 'utf8'));
    assert.equal(json.model.type, 'BPE');
    assert.equal(json.model.end_of_word_suffix, '</w>');
    assert.equal(json.post_processor.type, 'RobertaProcessing');
    const tokenizer = Tokenizer.fromJSON(json, models.tokenizer);
    const bos = tokenizer.tokenToId('<|startoftext|>')!;
    const eos = tokenizer.tokenToId('<|endoftext|>')!;
    const { ids, mask } = tokenizer.encode('Grinning face', 8);
    assert.equal(ids[0], BigInt(bos));
    assert.equal(
      mask.reduce((a, b) => a + b, 0n),
      4n,
      'frequent words are single tokens: bos, grinning, face, eos',
    );
    assert.equal(ids[3], BigInt(eos));
    // Any text encodes (byte level), and the model has a row for every id the tokenizer can make.
    const { ids: odd, mask: oddMask } = tokenizer.encode('Zürich 🚀 x²', 32);
    const dims = [1, 32];
    const out = await sessions.caption!.run({ input_ids: new ort.Tensor('int64', odd, dims), attention_mask: new ort.Tensor('int64', oddMask, dims) });
    assert.ok((out.embedding.data as Float32Array).every(Number.isFinite));
    const { ids: maxId } = tokenizer.encode('', 2);
    assert.equal(maxId[1], BigInt(tokenizer.vocabSize - 1), 'eos is the last id, as in CLIP');
    const table = (await readFile(models.caption)).length;
    assert.ok(table > tokenizer.vocabSize * 4 * 64, 'the token table is in the model');
  });
});

// ---- determinism ----------------------------------------------------------------------------------

test('two generations write identical bytes, and an existing set is reused', async () => {
  const again = await ensureBuiltinModels(path.join(tmp, 'b'));
  for (const k of ['shape', 'colour', 'caption', 'tokenizer'] as const) {
    assert.ok((await readFile(models[k])).equals(await readFile(again[k])), `${k} differs between generations`);
  }
  const reused = await ensureBuiltinModels(path.join(tmp, 'a'));
  assert.deepEqual(reused, models);
});

// ---- ONNX writer ----------------------------------------------------------------------------------

test('onnx writer: every attribute kind, int64 initializers and symbolic dims load and run', async () => {
  const g = new GraphBuilder();
  const c = g.op('Constant', [], { value_floats: attr.floats([1, -2, 3]) });
  const leaky = g.op('LeakyRelu', [g.op('Add', ['x', c])], { alpha: attr.float(0.5) });
  const padded = g.op('Pad', [leaky, g.int64s('pads', [4], [0, 1, 0, 1])], { mode: attr.string('reflect') });
  const ten = g.op('Constant', [], { value: attr.tensor({ name: 'ten', type: 'float32', dims: [1], data: Float32Array.of(10) }) });
  g.op('Mul', [padded, ten], undefined, 'y');
  g.op('ReduceMax', ['y'], { axes: attr.ints([-1]), keepdims: attr.int(1) }, 'm');
  const bytes = encodeModel({
    graph: {
      name: 'writer-test',
      nodes: g.nodes,
      initializers: g.initializers,
      inputs: [{ name: 'x', type: 'float32', shape: ['batch', 3] }],
      outputs: [
        { name: 'y', type: 'float32', shape: ['batch', 5] },
        { name: 'm', type: 'float32', shape: ['batch', 1] },
      ],
    },
  });
  const session = await ort.InferenceSession.create(bytes);
  const out = await session.run({ x: new ort.Tensor('float32', Float32Array.of(0, 0, 0, 1, 1, 1), [2, 3]) });
  assert.deepEqual(Array.from(out.y.data as Float32Array), [-10, 10, -10, 30, -10, -5, 20, -5, 40, -5]);
  assert.deepEqual(Array.from(out.m.data as Float32Array), [30, 40]);
});

// ---- tokenizer ------------------------------------------------------------------------------------

/** A tiny tokenizer.json laid out as openai/clip-vit-* ship theirs. */
function clipLikeTokenizer(): Record<string, unknown> {
  const letters = 'abcdefghijklmnopqrstuvwxyz,!';
  const tokens = [...letters, ...[...letters].map((c) => c + '</w>'), 'he', 'll', 'hell', 'hello</w>', 'wo', 'rl', 'worl', 'world</w>'];
  const vocab: Record<string, number> = {};
  tokens.forEach((t, i) => (vocab[t] = i));
  const bos = tokens.length;
  const eos = tokens.length + 1;
  vocab['<|startoftext|>'] = bos;
  vocab['<|endoftext|>'] = eos;
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [
      { id: bos, content: '<|startoftext|>', single_word: false, lstrip: false, rstrip: false, normalized: true, special: true },
      { id: eos, content: '<|endoftext|>', single_word: false, lstrip: false, rstrip: false, normalized: false, special: true },
    ],
    normalizer: { type: 'Sequence', normalizers: [{ type: 'NFC' }, { type: 'Replace', pattern: { Regex: '\\s+' }, content: ' ' }, { type: 'Lowercase' }] },
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        {
          type: 'Split',
          pattern: { Regex: "<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+" },
          behavior: 'Removed',
          invert: true,
        },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
      ],
    },
    post_processor: { type: 'RobertaProcessing', sep: ['<|endoftext|>', eos], cls: ['<|startoftext|>', bos], trim_offsets: false, add_prefix_space: false },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: '<|endoftext|>',
      continuing_subword_prefix: '',
      end_of_word_suffix: '</w>',
      fuse_unk: false,
      byte_fallback: false,
      vocab,
      merges: ['h e', 'l l', 'he ll', 'hell o</w>', 'w o', 'r l', 'wo rl', 'worl d</w>'],
    },
  };
}

describe('tokenizer', () => {
  const json = clipLikeTokenizer();
  const vocab = (json.model as { vocab: Record<string, number> }).vocab;
  const id = (t: string) => vocab[t];
  const tokenizer = Tokenizer.fromJSON(json, 'clip-like tokenizer.json');
  const [bos, eos] = [id('<|startoftext|>'), id('<|endoftext|>')];
  const list = (a: BigInt64Array) => Array.from(a, Number);

  test('GPT-2 byte-to-unicode table', () => {
    const table = bytesToUnicode();
    assert.equal(table[65], 'A');
    assert.equal(table[32], 'Ġ');
    assert.equal(table[10], 'Ċ');
    assert.equal(new Set(table).size, 256);
  });

  test('bos/eos, lowercasing, </w> merges in rank order, punctuation', () => {
    assert.deepEqual(list(tokenizer.encode('Hello   WORLD', 4).ids), [bos, id('hello</w>'), id('world</w>'), eos]);
    assert.deepEqual(tokenizer.tokenize('hello, world!'), [id('hello</w>'), id(',</w>'), id('world</w>'), id('!</w>')]);
    // "held": h e -> he; no "he l" merge; so he, l, d</w>.
    assert.deepEqual(tokenizer.tokenize('held'), [id('he'), id('l'), id('d</w>')]);
    // A byte outside the vocabulary becomes the unk token (CLIP's is <|endoftext|>).
    assert.deepEqual(tokenizer.tokenize('é'), [eos, eos]);
    // Special tokens in the text are recognised whole.
    assert.deepEqual(tokenizer.tokenize('hello<|endoftext|>'), [id('hello</w>'), eos]);
  });

  test('truncation keeps the end token; padding uses the end token with mask 0', () => {
    const cut = tokenizer.encode('hello world hello world', 4);
    assert.deepEqual(list(cut.ids), [bos, id('hello</w>'), id('world</w>'), eos]);
    assert.deepEqual(list(cut.mask), [1, 1, 1, 1]);
    const padded = tokenizer.encode('hello', 6);
    assert.deepEqual(list(padded.ids), [bos, id('hello</w>'), eos, eos, eos, eos]);
    assert.deepEqual(list(padded.mask), [1, 1, 1, 0, 0, 0]);
    const batch = tokenizer.encodeBatch(['hello', 'world hello'], 5);
    assert.deepEqual(list(batch.ids), [bos, id('hello</w>'), eos, eos, eos, bos, id('world</w>'), id('hello</w>'), eos, eos]);
    assert.deepEqual(list(batch.mask), [1, 1, 1, 0, 0, 1, 1, 1, 1, 0]);
  });

  test('WordLevel models with a template post-processor', () => {
    const wordLevel = Tokenizer.fromJSON({
      model: { type: 'WordLevel', vocab: { '[UNK]': 0, '[CLS]': 1, '[SEP]': 2, '[PAD]': 3, red: 4, apple: 5 }, unk_token: '[UNK]' },
      pre_tokenizer: { type: 'Whitespace' },
      post_processor: {
        type: 'TemplateProcessing',
        single: [{ SpecialToken: { id: '[CLS]', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '[SEP]', type_id: 0 } }],
        special_tokens: { '[CLS]': { id: '[CLS]', ids: [1], tokens: ['[CLS]'] }, '[SEP]': { id: '[SEP]', ids: [2], tokens: ['[SEP]'] } },
      },
      padding: { pad_id: 3, pad_token: '[PAD]' },
    });
    assert.deepEqual(list(wordLevel.encode('red apple pie', 7).ids), [1, 4, 5, 0, 2, 3, 3]);
  });

  test('a malformed or unsupported tokenizer.json is an error naming the file and the feature', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'megapairs-tokenizer-'));
    try {
      const unknown = path.join(dir, 'unknown.json');
      await writeFile(unknown, JSON.stringify({ ...json, model: { type: 'Nonsense', vocab: [] } }));
      await assert.rejects(Tokenizer.fromFile(unknown), (e: Error) => e.message.includes(unknown) && e.message.includes('Nonsense'));
      const broken = path.join(dir, 'broken.json');
      await writeFile(broken, '{"model": {"type": "BPE", "vocab": ');
      await assert.rejects(Tokenizer.fromFile(broken), (e: Error) => e.message.includes(broken) && /JSON/.test(e.message));
      const missing = path.join(dir, 'missing.json');
      await assert.rejects(Tokenizer.fromFile(missing), (e: Error) => e.message.includes(missing));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

test('decode_threads 0 is every core the machine has (no cap); with spinning onnxruntime threads, the cores they leave', () => {
  const cores = os.availableParallelism();
  assert.equal(decodeThreads(0), cores);
  assert.equal(decodeThreads(5), 5);
  assert.equal(decodeThreads(0, { intraOpThreads: 1 }), Math.max(1, cores - 1));
  assert.equal(decodeThreads(0, { intraOpThreads: cores * 2 }), 1);
});
