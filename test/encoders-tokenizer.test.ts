// Tokenizers from the ecosystem: tokenizer.json files of the three model kinds text towers ship
// (BPE as CLIP, WordPiece as BERT, Unigram as SigLIP / XLM-R), built here, encoded by the project's
// Tokenizer and compared with @huggingface/tokenizers itself, plus ids checked by hand, truncation
// that keeps the special tokens and the model's padding.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { bytesToUnicode, Tokenizer } from '../src/encoders/tokenizer.ts';

const special = (content: string, id: number) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });

/** CLIP's layout: lowercase + whitespace cleanup, byte-level pieces with </w>, <|startoftext|> ... <|endoftext|>. */
function clipBpe() {
  const table = bytesToUnicode();
  const vocab: Record<string, number> = {};
  for (const c of table) vocab[c] = Object.keys(vocab).length;
  for (const c of table) vocab[c + '</w>'] = Object.keys(vocab).length;
  const merges = ['h e', 'l l', 'he ll', 'o</w>', 'hell o</w>', 'r e', 'd</w>', 're d</w>'];
  for (const m of merges) vocab[m.replace(' ', '')] = Object.keys(vocab).length;
  const sot = Object.keys(vocab).length;
  vocab['<|startoftext|>'] = sot;
  vocab['<|endoftext|>'] = sot + 1;
  return {
    version: '1.0',
    added_tokens: [special('<|startoftext|>', sot), special('<|endoftext|>', sot + 1)],
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
    post_processor: { type: 'RobertaProcessing', sep: ['<|endoftext|>', sot + 1], cls: ['<|startoftext|>', sot], trim_offsets: false, add_prefix_space: false },
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
      merges,
    },
  };
}

/** BERT's layout: BertNormalizer (lowercase), BertPreTokenizer, ## continuations, [CLS] ... [SEP], [PAD]. */
function bertWordPiece() {
  const words = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', 'un', '##aff', '##able', 'red', 'apple', ',', '!', 'a', '##pple', 'the'];
  return {
    version: '1.0',
    added_tokens: ['[PAD]', '[UNK]', '[CLS]', '[SEP]'].map((t, i) => special(t, i)),
    normalizer: { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: { type: 'BertProcessing', sep: ['[SEP]', 3], cls: ['[CLS]', 2] },
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: {
      type: 'WordPiece',
      unk_token: '[UNK]',
      continuing_subword_prefix: '##',
      max_input_chars_per_word: 100,
      vocab: Object.fromEntries(words.map((w, i) => [w, i])),
    },
  };
}

/** SentencePiece's layout (SigLIP, XLM-R): Metaspace "▁" pieces scored by log-probability, text then </s>. */
function sentencePieceUnigram() {
  const pieces: Array<[string, number]> = [
    ['<pad>', 0],
    ['</s>', 0],
    ['<unk>', 0],
    ['▁red', -2],
    ['▁apple', -2.5],
    ['▁app', -3],
    ['le', -3],
    ['▁', -4],
  ];
  for (const c of 'abcdefghijklmnopqrstuvwxyz') pieces.push([c, -6]);
  return {
    version: '1.0',
    added_tokens: [special('<pad>', 0), special('</s>', 1), special('<unk>', 2)],
    normalizer: { type: 'Sequence', normalizers: [{ type: 'Replace', pattern: { Regex: ' {2,}' }, content: ' ' }, { type: 'Lowercase' }] },
    pre_tokenizer: { type: 'Metaspace', replacement: '▁', prepend_scheme: 'always', split: true },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '</s>', type_id: 0 } }],
      pair: [],
      special_tokens: { '</s>': { id: '</s>', ids: [1], tokens: ['</s>'] } },
    },
    decoder: { type: 'Metaspace', replacement: '▁', prepend_scheme: 'always', split: true },
    model: { type: 'Unigram', unk_id: 2, vocab: pieces, byte_fallback: false },
  };
}

const TEXTS = [
  'hello red',
  'Hello   RED hello',
  'Unaffable, red apple!',
  'red apple the apple',
  '',
  'a\u0085b \ufeffred',
  'HELLO<|endoftext|>hello',
  '<|ENDOFTEXT|> [cls] red',
  'Zürich 🚀 x² 東京',
  'red '.repeat(40),
];

const real = (e: { ids: BigInt64Array; mask: BigInt64Array }) =>
  Array.from(e.ids)
    .filter((_, i) => e.mask[i] === 1n)
    .map(Number);

for (const [kind, make] of [
  ['BPE (CLIP)', clipBpe],
  ['WordPiece (BERT)', bertWordPiece],
  ['Unigram (SentencePiece)', sentencePieceUnigram],
] as const) {
  test(`${kind}: ids as @huggingface/tokenizers gives them, truncated keeping the special tokens, padded`, () => {
    const json = make();
    const ours = Tokenizer.fromJSON(json, kind);
    const hf = new HfTokenizer(json, { unk_token: (json.model as { unk_token?: string }).unk_token });
    for (const text of TEXTS) {
      const library: number[] = hf.encode(text).ids;
      const L = 16;
      const e = ours.encode(text, L);
      if (library.length <= L) assert.deepEqual(real(e), library, `${kind}: ${JSON.stringify(text)}`);
      else {
        // Truncated: the text cut, the one closing special token kept (transformers' truncation=True).
        assert.deepEqual(real(e), [...library.slice(0, L - 1), library.at(-1)], `${kind}: ${JSON.stringify(text)} truncated`);
      }
      const pads = Array.from(e.ids).filter((_, i) => e.mask[i] === 0n);
      assert.ok(
        pads.every((p) => p === BigInt(ours.padId)),
        `${kind}: padding with ${ours.padId}`,
      );
    }
  });
}

test('ids checked by hand, and each model pads as it expects', () => {
  const clip = Tokenizer.fromJSON(clipBpe());
  const id = (t: string) => clip.tokenToId(t)!;
  const eot = id('<|endoftext|>');
  assert.deepEqual(real(clip.encode('Hello   RED', 8)), [id('<|startoftext|>'), id('hello</w>'), id('red</w>'), eot]);
  assert.equal(clip.padId, eot, 'CLIP pads with <|endoftext|>');
  assert.equal(clip.vocabSize - 1, eot, 'and <|endoftext|> is the highest id (eot pooling finds it by argmax)');
  const bert = Tokenizer.fromJSON(bertWordPiece());
  assert.deepEqual(real(bert.encode('Unaffable, red apple!', 16)), [2, 4, 5, 6, 9, 7, 8, 10, 3]);
  assert.equal(bert.padId, 0, 'BERT pads with [PAD]');
  assert.deepEqual(Array.from(bert.encode('red', 5).ids, Number), [2, 7, 3, 0, 0]);
  const sp = Tokenizer.fromJSON(sentencePieceUnigram());
  assert.deepEqual(real(sp.encode('red  apple', 8)), [3, 4, 1]);
  assert.deepEqual(real(sp.encode('red apple apple', 3)), [3, 4, 1], 'cut to max_length with </s> kept');
  assert.equal(Tokenizer.fromJSON(sentencePieceUnigram(), 'siglip', '</s>').padId, 1, 'pad_token overrides (SigLIP pads with </s>)');
});
