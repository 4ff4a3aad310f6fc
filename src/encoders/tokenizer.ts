// Reads Hugging Face `tokenizer.json` files through @huggingface/tokenizers (the pure-JS port of
// the `tokenizers` library that transformers.js uses): BPE (CLIP, RoBERTa), WordPiece (BERT) and
// Unigram (SigLIP, XLM-R) models with their normalizers, pre-tokenizers and added tokens. What the
// library leaves to the caller is here: truncation to `max_length` that keeps the special tokens
// (as `truncation=True` in transformers), and padding to exactly `max_length` with the pad token
// the file names, else the end token (CLIP's HF tokenizers pad with <|endoftext|>).
import { readFile } from 'node:fs/promises';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';

/** Token ids and attention mask of one or more texts, as onnxruntime int64 tensors take them. */
export interface Encoded {
  /** int64 ids, `maxLength` per text (row-major [n, maxLength] for a batch). */
  ids: BigInt64Array;
  /** 1 for a real token, 0 for padding; same layout as `ids`. */
  mask: BigInt64Array;
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * GPT-2's byte to printable-character table, which byte-level BPE vocabularies are written in:
 * printable Latin-1 bytes stand for themselves, the others are moved to U+0100 and above.
 */
export function bytesToUnicode(): string[] {
  const printable: number[] = [];
  for (let b = 33; b <= 126; b++) printable.push(b);
  for (let b = 161; b <= 172; b++) printable.push(b);
  for (let b = 174; b <= 255; b++) printable.push(b);
  const table: string[] = new Array(256);
  let shifted = 0;
  for (let b = 0; b < 256; b++) {
    table[b] = String.fromCodePoint(printable.includes(b) ? b : 256 + shifted++);
  }
  return table;
}

/** The byte-level alphabet in the order CLIP's vocabulary lists it (printable bytes first). */
export function byteLevelAlphabet(): string[] {
  const table = bytesToUnicode();
  const order: number[] = [];
  for (let b = 0; b < 256; b++) if (table[b].codePointAt(0)! < 256) order.push(b);
  for (let b = 0; b < 256; b++) if (table[b].codePointAt(0)! >= 256) order.push(b);
  return order.map((b) => table[b]);
}

const MODELS = ['BPE', 'WordPiece', 'Unigram', 'WordLevel'];

/** A stand-in token, to see where the post-processor puts the text between its special tokens. */
const SENTINEL = '\u0000megapairs-text\u0000';

export class Tokenizer {
  private constructor(
    private readonly hf: HfTokenizer,
    /** Special-token ids the post-processor puts before and after the text. */
    private readonly before: number[],
    private readonly after: number[],
    /** Id that fills the positions after the text (mask 0 there). */
    readonly padId: number,
    private readonly truncateLeft: boolean,
    private readonly padLeft: boolean,
    readonly vocabSize: number,
  ) {}

  /** Reads a Hugging Face `tokenizer.json`; errors name the file. `padToken` overrides the pad token. */
  static async fromFile(path: string, padToken?: string): Promise<Tokenizer> {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (e) {
      throw new Error(`tokenizer ${path}: cannot read (${(e as Error).message})`);
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (e) {
      throw new Error(`tokenizer ${path}: not valid JSON (${(e as Error).message})`);
    }
    return Tokenizer.fromJSON(json, path, padToken);
  }

  /** Builds a tokenizer from the parsed JSON; `where` names its origin in error messages. */
  static fromJSON(json: unknown, where = 'tokenizer.json', padToken?: string): Tokenizer {
    let hf: HfTokenizer;
    try {
      if (!isObject(json) || !isObject(json.model)) throw new Error('not a tokenizer.json (no "model" object)');
      const type = json.model.type;
      if (!MODELS.includes(type as string)) throw new Error(`model type ${JSON.stringify(type)} (supported: ${MODELS.join(', ')})`);
      // Optional sections may be absent from a file; the library wants them present (null).
      const sections = { normalizer: null, pre_tokenizer: null, post_processor: null, decoder: null, added_tokens: [] };
      // The second argument stands for tokenizer_config.json; WordLevel takes its unk_token from there.
      hf = new HfTokenizer({ ...sections, ...json }, { unk_token: json.model.unk_token });
    } catch (e) {
      throw new Error(`tokenizer ${where}: unsupported or malformed: ${(e as Error).message}`);
    }
    const id = (t: string, what: string) => {
      const i = hf.token_to_id(t);
      if (i === undefined) throw new Error(`tokenizer ${where}: ${what} "${t}" is not in the vocabulary`);
      return i;
    };
    const wrapped: string[] = hf.post_processor ? hf.post_processor.post_process([SENTINEL]).tokens : [SENTINEL];
    const at = wrapped.indexOf(SENTINEL);
    const before = wrapped.slice(0, at).map((t) => id(t, 'special token'));
    const after = wrapped.slice(at + 1).map((t) => id(t, 'special token'));
    const padding = isObject(json.padding) ? json.padding : undefined;
    const truncation = isObject(json.truncation) ? json.truncation : undefined;
    // The pad token: the file's padding section, else a token named as a pad token ([PAD], <pad>),
    // else the end token (CLIP's HF tokenizers pad with <|endoftext|>), else 0.
    const added = Array.isArray(json.added_tokens) ? (json.added_tokens as Json[]).map((t) => t.content).filter((c): c is string => typeof c === 'string') : [];
    const named = [...added, '[PAD]', '<pad>', '<|pad|>'].find((t) => /^(\[pad\]|<pad>|<\|pad\|>)$/i.test(t) && hf.token_to_id(t) !== undefined);
    const padId =
      padToken !== undefined
        ? id(padToken, 'pad_token')
        : Number.isInteger(padding?.pad_id)
          ? (padding!.pad_id as number)
          : named !== undefined
            ? hf.token_to_id(named)!
            : (after.at(-1) ?? 0);
    const vocabSize = Math.max(...hf.get_vocab(true).values()) + 1;
    return new Tokenizer(hf, before, after, padId, truncation?.direction === 'Left', padding?.direction === 'Left', vocabSize);
  }

  /** The id of a token string (vocabulary or added token). */
  tokenToId(token: string): number | undefined {
    return this.hf.token_to_id(token);
  }

  /** Normalised, pre-tokenised pieces of a text: the words the model sees. */
  splitWords(text: string): string[] {
    const normalized = this.hf.normalizer ? this.hf.normalizer._call(text) : text;
    return this.hf.pre_tokenizer ? this.hf.pre_tokenizer._call(normalized) : [normalized];
  }

  /** The ids of a text, no special tokens added, no truncation, no padding. */
  tokenize(text: string): number[] {
    const { ids, tokens } = this.hf.encode(text, { add_special_tokens: false });
    const unknown = ids.findIndex((id: number | undefined) => id === undefined);
    if (unknown >= 0) throw new Error(`tokenizer: "${tokens[unknown]}" has no id and the model has no unk_token`);
    return ids;
  }

  /** Ids wrapped in the special tokens, truncated so that they are kept, padded to exactly `maxLength`. */
  encode(text: string, maxLength: number): Encoded {
    return this.encodeBatch([text], maxLength);
  }

  /** Flat [texts.length * maxLength] ids and mask, ready for `new ort.Tensor('int64', ids, [n, maxLength])`. */
  encodeBatch(texts: readonly string[], maxLength: number): Encoded {
    const ids = new BigInt64Array(texts.length * maxLength);
    const mask = new BigInt64Array(texts.length * maxLength);
    texts.forEach((t, i) => this.encodeInto(t, maxLength, ids, mask, i * maxLength));
    return { ids, mask };
  }

  private encodeInto(text: string, maxLength: number, ids: BigInt64Array, mask: BigInt64Array, at: number): void {
    const { before, after } = this;
    const room = maxLength - before.length - after.length;
    if (room < 0) throw new Error(`tokenizer: max_length ${maxLength} is shorter than its ${before.length + after.length} special tokens`);
    let content = this.tokenize(text);
    if (content.length > room) content = this.truncateLeft ? content.slice(content.length - room) : content.slice(0, room);
    const tokens = [...before, ...content, ...after];
    const start = this.padLeft ? maxLength - tokens.length : 0;
    for (let i = 0; i < maxLength; i++) {
      const j = i - start;
      const real = j >= 0 && j < tokens.length;
      ids[at + i] = BigInt(real ? tokens[j] : this.padId);
      mask[at + i] = real ? 1n : 0n;
    }
  }
}
