// The `caption` built-in: a CLIP-format byte-level BPE tokenizer trained on the openmoji texts,
// and a bag-of-words model over its vocabulary.
import { createRequire } from 'node:module';
import { readFile } from 'node:fs/promises';
import { BUILTIN_MODELS_VERSION, builtinModel, l2Normalize } from './graph.ts';
import { attr, GraphBuilder, type ModelSpec, type ValueSpec } from '../onnx-writer.ts';
import { byteLevelAlphabet, Tokenizer } from '../tokenizer.ts';
import { Rng } from '../../util/rng.ts';

const require = createRequire(import.meta.url);

/** The openmoji caption of an emoji, `annotation: tags`, the text the caption model was tuned on. */
export function openmojiCaption(e: { annotation: string; tags?: string }): string {
  return e.tags ? `${e.annotation}: ${e.tags}` : e.annotation;
}

export async function openmojiCaptions(): Promise<string[]> {
  let file: string;
  try {
    file = require.resolve('openmoji/data/openmoji.json');
  } catch {
    // A production install (npm ci --omit=dev) has no openmoji: the built-ins are for the demo.
    throw new Error(
      'the builtin:caption encoder is trained on the openmoji package, a dev dependency that is not installed (npm install openmoji, or point encoders.caption at a real model)',
    );
  }
  const data = JSON.parse(await readFile(file, 'utf8')) as Array<{ annotation: string; tags?: string }>;
  return data.map(openmojiCaption);
}

const START = '<|startoftext|>';
const END = '<|endoftext|>';
/** CLIP's pre-tokenizer pattern: contractions, letter runs, single digits, punctuation runs. */
const CLIP_SPLIT = "<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+";

/** A tokenizer.json in the layout openai/clip-vit-* ship, for the given vocabulary and merges. */
function clipTokenizerJson(vocab: Record<string, number>, merges: string[]): Record<string, unknown> {
  const startId = vocab[START];
  const endId = vocab[END];
  const special = (id: number, content: string, normalized: boolean) => ({
    id,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized,
    special: true,
  });
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: [special(startId, START, true), special(endId, END, false)],
    normalizer: {
      type: 'Sequence',
      normalizers: [{ type: 'NFC' }, { type: 'Replace', pattern: { Regex: '\\s+' }, content: ' ' }, { type: 'Lowercase' }],
    },
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        { type: 'Split', pattern: { Regex: CLIP_SPLIT }, behavior: 'Removed', invert: true },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: false },
      ],
    },
    post_processor: { type: 'RobertaProcessing', sep: [END, endId], cls: [START, startId], trim_offsets: false, add_prefix_space: false },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: END,
      continuing_subword_prefix: '',
      end_of_word_suffix: '</w>',
      fuse_unk: false,
      byte_fallback: false,
      vocab,
      merges,
    },
  };
}

/**
 * Learns byte-level BPE merges the way CLIP's vocabulary was built: words end in `</w>`, the most
 * frequent adjacent pair is merged next (ties: the smaller pair string, so training is
 * deterministic), until `maxMerges` or until no pair occurs `minCount` times.
 */
function learnMerges(wordCounts: Map<string, number>, maxMerges: number, minCount: number): string[] {
  const words: string[][] = [];
  const freq: number[] = [];
  for (const [word, count] of [...wordCounts].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const symbols = Array.from(word);
    symbols[symbols.length - 1] += '</w>';
    words.push(symbols);
    freq.push(count);
  }
  const pairCount = new Map<string, number>();
  const pairWords = new Map<string, Set<number>>();
  const count = (w: number, sign: 1 | -1) => {
    const s = words[w];
    for (let i = 0; i + 1 < s.length; i++) {
      const key = s[i] + ' ' + s[i + 1]; // byte-level symbols never hold a space
      const c = (pairCount.get(key) ?? 0) + sign * freq[w];
      if (c) pairCount.set(key, c);
      else pairCount.delete(key);
      if (sign > 0) {
        let set = pairWords.get(key);
        if (!set) pairWords.set(key, (set = new Set()));
        set.add(w);
      }
    }
  };
  words.forEach((_, w) => count(w, 1));

  const merges: string[] = [];
  while (merges.length < maxMerges) {
    let best = '';
    let bestCount = 0;
    for (const [key, c] of pairCount) if (c > bestCount || (c === bestCount && key < best)) [best, bestCount] = [key, c];
    if (bestCount < minCount) break;
    merges.push(best);
    const [a, b] = best.split(' ');
    for (const w of pairWords.get(best) ?? []) {
      count(w, -1);
      const s = words[w];
      const merged: string[] = [];
      for (let i = 0; i < s.length; i++) {
        if (i + 1 < s.length && s[i] === a && s[i + 1] === b) merged.push(a + b), i++;
        else merged.push(s[i]);
      }
      words[w] = merged;
      count(w, 1);
    }
    pairWords.delete(best);
  }
  return merges;
}

export interface CaptionOptions {
  maxMerges: number;
  minCount: number;
  dim: number;
}

export const CAPTION: CaptionOptions = { maxMerges: 4000, minCount: 2, dim: 256 };

/** Trains the caption tokenizer on the openmoji captions; vocabulary laid out as CLIP's is. */
export function captionTokenizerJson(captions: string[], o: CaptionOptions = CAPTION): Record<string, unknown> {
  const alphabet = byteLevelAlphabet();
  const baseVocab: Record<string, number> = {};
  [...alphabet, ...alphabet.map((c) => c + '</w>')].forEach((t, i) => (baseVocab[t] = i));
  baseVocab[START] = alphabet.length * 2;
  baseVocab[END] = alphabet.length * 2 + 1;
  // An untrained tokenizer gives the words exactly as the trained one will split them.
  const splitter = Tokenizer.fromJSON(clipTokenizerJson(baseVocab, []), 'caption tokenizer (untrained)');
  const wordCounts = new Map<string, number>();
  for (const text of captions) for (const w of splitter.splitWords(text)) wordCounts.set(w, (wordCounts.get(w) ?? 0) + 1);
  const merges = learnMerges(wordCounts, o.maxMerges, o.minCount);

  const vocab: Record<string, number> = {};
  let next = 0;
  for (const t of [...alphabet, ...alphabet.map((c) => c + '</w>'), ...merges.map((m) => m.replace(' ', ''))]) {
    if (!(t in vocab)) vocab[t] = next++;
  }
  vocab[START] = next++;
  vocab[END] = next++;
  return clipTokenizerJson(vocab, merges);
}

/**
 * Bag of words: embedding = normalise(sum over real tokens of table[id]); table[id] is a seeded
 * Gaussian vector scaled by the token's idf in the openmoji captions (so ":" and "," weigh nothing),
 * special tokens are zero rows. The mean's 1/count would cancel in the normalisation, so it is left out.
 */
export function captionModel(tokenizer: Tokenizer, captions: string[], o: CaptionOptions = CAPTION): ModelSpec {
  const V = tokenizer.vocabSize;
  const D = o.dim;
  const df = new Float64Array(V);
  for (const text of captions) for (const id of new Set(tokenizer.tokenize(text))) df[id]++;
  const specials = new Set([START, END].map((t) => tokenizer.tokenToId(t)));
  const rng = Rng.for('megapairs builtin caption table', BUILTIN_MODELS_VERSION);
  const table = new Float32Array(V * D);
  for (let id = 0; id < V; id++) {
    const idf = Math.log((captions.length + 1) / (df[id] + 1));
    for (let j = 0; j < D; j++) {
      const v = rng.normal();
      if (!specials.has(id)) table[id * D + j] = (idf * v) / Math.sqrt(D);
    }
  }

  const g = new GraphBuilder();
  const vectors = g.op('Gather', [g.floats('token_table', [V, D], table), 'input_ids'], { axis: attr.int(0) }); // [N, L, D]
  const mask = g.op('Unsqueeze', [g.op('Cast', ['attention_mask'], { to: attr.int(1) }), g.int64s('axis2', [1], [2])]); // [N, L, 1] float
  const sum = g.op('ReduceSum', [g.op('Mul', [vectors, mask]), g.int64s('axis1', [1], [1])], { keepdims: attr.int(0) }); // [N, D]
  l2Normalize(g, sum, 'embedding');
  const inputs: ValueSpec[] = [
    { name: 'input_ids', type: 'int64', shape: ['batch', 'sequence'] },
    { name: 'attention_mask', type: 'int64', shape: ['batch', 'sequence'] },
  ];
  const doc = 'megapairs built-in caption encoder: idf-weighted bag of seeded random token vectors over caption-tokenizer.json, L2-normalised.';
  return builtinModel('caption', g, inputs, D, doc);
}
