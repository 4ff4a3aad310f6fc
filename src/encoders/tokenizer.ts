// Reads Hugging Face `tokenizer.json` files, enough of them for the text encoders this project runs:
// the byte-level BPE tokenizers CLIP models ship (openai/clip-vit-*), and WordLevel ones.
// Pipeline, as in the `tokenizers` library: added (special) tokens are cut out of the text first,
// the rest is normalised, pre-tokenised into pieces, each piece is turned into ids by the model,
// and the post-processor wraps the ids in special tokens (<|startoftext|> ... <|endoftext|>).
// Anything the file asks for that we do not implement is an Error naming the file and the feature,
// never a silent approximation.
import { readFile } from 'node:fs/promises';

/** Token ids and attention mask of one or more texts, as onnxruntime int64 tensors take them. */
export interface Encoded {
  /** int64 ids, `maxLength` per text (row-major [n, maxLength] for a batch). */
  ids: BigInt64Array;
  /** 1 for a real token, 0 for padding; same layout as `ids`. */
  mask: BigInt64Array;
}

type Json = Record<string, unknown>;
type Normalizer = (text: string) => string;
type PreTokenizer = (pieces: string[]) => string[];
type Model = (piece: string) => number[];

class Unsupported extends Error {}

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

const BYTE_TO_CHAR = bytesToUnicode();
const UTF8 = new TextEncoder();
const GPT2_PATTERN = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

/** A `Sequence` normalizer or pre-tokenizer: its steps applied in order. */
function chain<T>(steps: Array<(value: T) => T>): (value: T) => T {
  return (value) => steps.reduce((acc, step) => step(acc), value);
}

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

/** A `{ "Regex": ... }` or `{ "String": ... }` pattern, as a global JavaScript RegExp. */
function compilePattern(pattern: unknown, what: string): RegExp {
  if (isObject(pattern) && typeof pattern.String === 'string') return new RegExp(escapeRegExp(pattern.String), 'gu');
  if (isObject(pattern) && typeof pattern.Regex === 'string') {
    try {
      return new RegExp(pattern.Regex, 'gu');
    } catch (e) {
      throw new Unsupported(`${what} regex ${JSON.stringify(pattern.Regex)} is not valid JavaScript regex syntax (${(e as Error).message})`);
    }
  }
  throw new Unsupported(`${what} pattern ${JSON.stringify(pattern)} (expected {"Regex": ...} or {"String": ...})`);
}

// ---- normalizers --------------------------------------------------------------------------------

function buildNormalizer(spec: unknown): Normalizer {
  if (spec === null || spec === undefined) return (t) => t;
  if (!isObject(spec)) throw new Unsupported(`normalizer ${JSON.stringify(spec)}`);
  switch (spec.type) {
    case 'Sequence':
      return chain(asArray(spec.normalizers, 'normalizer Sequence.normalizers').map(buildNormalizer));
    case 'NFC':
    case 'NFD':
    case 'NFKC':
    case 'NFKD': {
      const form = spec.type;
      return (t) => t.normalize(form);
    }
    case 'Lowercase':
      return (t) => t.toLowerCase();
    case 'StripAccents':
      return (t) => t.normalize('NFD').replace(/\p{Mn}/gu, '');
    case 'Strip': {
      const left = spec.strip_left !== false;
      const right = spec.strip_right !== false;
      return (t) => (left && right ? t.trim() : left ? t.trimStart() : right ? t.trimEnd() : t);
    }
    case 'Prepend': {
      const prefix = String(spec.prepend ?? '');
      return (t) => (t ? prefix + t : t);
    }
    case 'Replace': {
      const re = compilePattern(spec.pattern, 'normalizer Replace');
      const content = String(spec.content ?? '');
      return (t) => t.replace(re, () => content);
    }
    default:
      throw new Unsupported(`normalizer type ${JSON.stringify(spec.type)}`);
  }
}

// ---- pre-tokenizers ---------------------------------------------------------------------------

type SplitBehavior = 'Removed' | 'Isolated' | 'MergedWithPrevious' | 'MergedWithNext' | 'Contiguous';

/** Splits on a pattern; `invert` makes the matches the pieces and the gaps the delimiters. */
function splitOn(text: string, re: RegExp, behavior: SplitBehavior, invert: boolean): string[] {
  const segments: Array<{ text: string; delimiter: boolean }> = [];
  let last = 0;
  for (const m of text.matchAll(re)) {
    if (!m[0]) continue;
    if (m.index! > last) segments.push({ text: text.slice(last, m.index), delimiter: invert });
    segments.push({ text: m[0], delimiter: !invert });
    last = m.index! + m[0].length;
  }
  if (last < text.length) segments.push({ text: text.slice(last), delimiter: invert });

  const out: string[] = [];
  let carry = '';
  let previousWasDelimiter = false;
  for (const s of segments) {
    switch (behavior) {
      case 'Removed':
        if (!s.delimiter) out.push(s.text);
        break;
      case 'Isolated':
        out.push(s.text);
        break;
      case 'MergedWithPrevious':
        if (s.delimiter && out.length) out[out.length - 1] += s.text;
        else out.push(s.text);
        break;
      case 'MergedWithNext':
        if (s.delimiter) carry += s.text;
        else {
          out.push(carry + s.text);
          carry = '';
        }
        break;
      case 'Contiguous':
        if (s.delimiter && previousWasDelimiter && out.length) out[out.length - 1] += s.text;
        else out.push(s.text);
        break;
    }
    previousWasDelimiter = s.delimiter;
  }
  if (carry) out.push(carry);
  return out.filter((p) => p.length > 0);
}

/** Maps each UTF-8 byte of a piece to its printable stand-in (what byte-level vocabularies hold). */
function toByteLevel(piece: string): string {
  let out = '';
  for (const b of UTF8.encode(piece)) out += BYTE_TO_CHAR[b];
  return out;
}

function buildPreTokenizer(spec: unknown): PreTokenizer {
  if (spec === null || spec === undefined) return (p) => p;
  if (!isObject(spec)) throw new Unsupported(`pre_tokenizer ${JSON.stringify(spec)}`);
  switch (spec.type) {
    case 'Sequence':
      return chain(asArray(spec.pretokenizers, 'pre_tokenizer Sequence.pretokenizers').map(buildPreTokenizer));
    case 'Split': {
      const re = compilePattern(spec.pattern, 'pre_tokenizer Split');
      const behavior = spec.behavior as SplitBehavior;
      if (!['Removed', 'Isolated', 'MergedWithPrevious', 'MergedWithNext', 'Contiguous'].includes(behavior)) {
        throw new Unsupported(`pre_tokenizer Split behavior ${JSON.stringify(spec.behavior)}`);
      }
      const invert = spec.invert === true;
      return (pieces) => pieces.flatMap((p) => splitOn(p, re, behavior, invert));
    }
    case 'ByteLevel': {
      const addPrefixSpace = spec.add_prefix_space === true;
      const useRegex = spec.use_regex !== false; // the library's default is true
      return (pieces) =>
        pieces.flatMap((p, i) => {
          const text = addPrefixSpace && i === 0 && !p.startsWith(' ') ? ' ' + p : p;
          const parts = useRegex ? text.match(GPT2_PATTERN) ?? [] : [text];
          return parts.map(toByteLevel);
        });
    }
    case 'Whitespace':
      return (pieces) => pieces.flatMap((p) => p.match(/[\p{L}\p{N}\p{M}_]+|[^\p{L}\p{N}\p{M}_\s]+/gu) ?? []);
    case 'WhitespaceSplit':
      return (pieces) => pieces.flatMap((p) => p.split(/\s+/u).filter(Boolean));
    default:
      throw new Unsupported(`pre_tokenizer type ${JSON.stringify(spec.type)}`);
  }
}

// ---- models -----------------------------------------------------------------------------------

function readVocab(spec: Json, where: string): Map<string, number> {
  if (!isObject(spec.vocab)) throw new Unsupported(`${where}.vocab must be an object of token -> id`);
  const vocab = new Map<string, number>();
  for (const [token, id] of Object.entries(spec.vocab)) {
    if (!Number.isInteger(id) || (id as number) < 0) throw new Unsupported(`${where}.vocab[${JSON.stringify(token)}] is not a non-negative integer id`);
    vocab.set(token, id as number);
  }
  return vocab;
}

/** Byte-pair encoding: split a piece into characters, then apply the merges in rank order. */
function buildBpe(spec: Json, vocab: Map<string, number>): Model {
  if (spec.byte_fallback === true) throw new Unsupported('model BPE byte_fallback');
  if (typeof spec.dropout === 'number' && spec.dropout > 0) throw new Unsupported('model BPE dropout (it makes encoding random)');
  const prefix = typeof spec.continuing_subword_prefix === 'string' ? spec.continuing_subword_prefix : '';
  const suffix = typeof spec.end_of_word_suffix === 'string' ? spec.end_of_word_suffix : '';
  const ignoreMerges = spec.ignore_merges === true;
  const fuseUnk = spec.fuse_unk === true;
  let unkId: number | undefined;
  if (typeof spec.unk_token === 'string') {
    unkId = vocab.get(spec.unk_token);
    if (unkId === undefined) throw new Unsupported(`model BPE unk_token ${JSON.stringify(spec.unk_token)} is not in the vocab`);
  }

  // Merge ranks; merges come as "a b" strings (older files) or [a, b] pairs (newer ones).
  const ranks = new Map<string, number>();
  asArray(spec.merges, 'model.merges').forEach((m, rank) => {
    const pair = typeof m === 'string' ? m.split(' ') : m;
    if (!Array.isArray(pair) || pair.length !== 2 || typeof pair[0] !== 'string' || typeof pair[1] !== 'string') {
      throw new Unsupported(`model.merges[${rank}] ${JSON.stringify(m)} (expected "a b" or ["a", "b"])`);
    }
    const key = pair[0] + '\u0000' + pair[1];
    if (!ranks.has(key)) ranks.set(key, rank);
  });
  const joined = (a: string, b: string) => a + (prefix && b.startsWith(prefix) ? b.slice(prefix.length) : b);

  const cache = new Map<string, number[]>();
  return (piece) => {
    const hit = cache.get(piece);
    if (hit) return hit;
    let ids: number[];
    const whole = vocab.get(piece + suffix);
    if (ignoreMerges && whole !== undefined) ids = [whole];
    else {
      const chars = Array.from(piece);
      let symbols = chars.map((c, i) => (i > 0 ? prefix : '') + c + (i === chars.length - 1 ? suffix : ''));
      while (symbols.length > 1) {
        // The lowest-ranked adjacent pair is merged everywhere it occurs, left to right.
        let best = -1;
        let bestRank = Infinity;
        for (let i = 0; i + 1 < symbols.length; i++) {
          const r = ranks.get(symbols[i] + '\u0000' + symbols[i + 1]);
          if (r !== undefined && r < bestRank) [best, bestRank] = [i, r];
        }
        if (best < 0) break;
        const [a, b] = [symbols[best], symbols[best + 1]];
        const next: string[] = [];
        for (let i = 0; i < symbols.length; i++) {
          if (i + 1 < symbols.length && symbols[i] === a && symbols[i + 1] === b) next.push(joined(a, b)), i++;
          else next.push(symbols[i]);
        }
        symbols = next;
      }
      ids = [];
      for (const s of symbols) {
        const id = vocab.get(s);
        if (id !== undefined) ids.push(id);
        else if (unkId !== undefined && !(fuseUnk && ids[ids.length - 1] === unkId)) ids.push(unkId);
      }
    }
    if (cache.size > 50_000) cache.clear();
    cache.set(piece, ids);
    return ids;
  };
}

/** One id per piece; unknown pieces become the unk token. */
function buildWordLevel(spec: Json, vocab: Map<string, number>): Model {
  const unkId = typeof spec.unk_token === 'string' ? vocab.get(spec.unk_token) : undefined;
  if (unkId === undefined) throw new Unsupported(`model WordLevel unk_token ${JSON.stringify(spec.unk_token)} is missing from the vocab`);
  return (piece) => [vocab.get(piece) ?? unkId];
}

function buildModel(spec: unknown): { run: Model; vocab: Map<string, number> } {
  if (!isObject(spec)) throw new Unsupported('model (missing)');
  // Older files leave out "type" for BPE.
  const type = spec.type ?? (spec.merges ? 'BPE' : undefined);
  if (type !== 'BPE' && type !== 'WordLevel') throw new Unsupported(`model type ${JSON.stringify(spec.type)}`);
  const vocab = readVocab(spec, 'model');
  return { run: type === 'BPE' ? buildBpe(spec, vocab) : buildWordLevel(spec, vocab), vocab };
}

// ---- post-processors --------------------------------------------------------------------------

/** Special ids put before and after a single sequence. */
interface Wrapping {
  before: number[];
  after: number[];
}

function tokenAndId(v: unknown, what: string): number {
  if (Array.isArray(v) && v.length === 2 && Number.isInteger(v[1])) return v[1] as number;
  throw new Unsupported(`${what} ${JSON.stringify(v)} (expected [token, id])`);
}

function buildPostProcessor(spec: unknown): Wrapping {
  if (spec === null || spec === undefined) return { before: [], after: [] };
  if (!isObject(spec)) throw new Unsupported(`post_processor ${JSON.stringify(spec)}`);
  switch (spec.type) {
    case 'RobertaProcessing':
    case 'BertProcessing':
      return { before: [tokenAndId(spec.cls, 'post_processor cls')], after: [tokenAndId(spec.sep, 'post_processor sep')] };
    case 'ByteLevel':
      return { before: [], after: [] }; // only trims offsets
    case 'TemplateProcessing': {
      const specials = isObject(spec.special_tokens) ? spec.special_tokens : {};
      const wrap: Wrapping = { before: [], after: [] };
      let seenSequence = false;
      for (const item of asArray(spec.single, 'post_processor TemplateProcessing.single')) {
        if (isObject(item) && isObject(item.Sequence)) seenSequence = true;
        else if (isObject(item) && isObject(item.SpecialToken)) {
          const name = String(item.SpecialToken.id);
          const special = specials[name];
          if (!isObject(special) || !Array.isArray(special.ids)) throw new Unsupported(`post_processor special token ${JSON.stringify(name)} (not in special_tokens)`);
          (seenSequence ? wrap.after : wrap.before).push(...(special.ids as number[]));
        } else throw new Unsupported(`post_processor template item ${JSON.stringify(item)}`);
      }
      return wrap;
    }
    case 'Sequence': {
      const parts = asArray(spec.processors, 'post_processor Sequence.processors').map(buildPostProcessor);
      return { before: parts.flatMap((p) => p.before), after: parts.flatMap((p) => p.after) };
    }
    default:
      throw new Unsupported(`post_processor type ${JSON.stringify(spec.type)}`);
  }
}

function asArray(v: unknown, what: string): unknown[] {
  if (!Array.isArray(v)) throw new Unsupported(`${what} must be a list`);
  return v;
}

// ---- the tokenizer ----------------------------------------------------------------------------

export class Tokenizer {
  private constructor(
    private readonly normalize: Normalizer,
    private readonly preTokenize: PreTokenizer,
    private readonly model: Model,
    private readonly vocab: Map<string, number>,
    private readonly addedTokens: Map<string, number>,
    private readonly addedPattern: RegExp | undefined,
    private readonly wrapping: Wrapping,
    /** Id that fills the positions after the text (mask 0 there). */
    private readonly padId: number,
    private readonly truncateLeft: boolean,
    private readonly padLeft: boolean,
  ) {}

  /** Reads a Hugging Face `tokenizer.json`; errors name the file. */
  static async fromFile(path: string): Promise<Tokenizer> {
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
    return Tokenizer.fromJSON(json, path);
  }

  /** Builds a tokenizer from the parsed JSON; `where` names its origin in error messages. */
  static fromJSON(json: unknown, where = 'tokenizer.json'): Tokenizer {
    try {
      if (!isObject(json)) throw new Unsupported('the top level must be a JSON object');
      const { run: model, vocab } = buildModel(json.model);
      const added = new Map<string, number>();
      for (const t of json.added_tokens === undefined || json.added_tokens === null ? [] : asArray(json.added_tokens, 'added_tokens')) {
        if (!isObject(t) || typeof t.content !== 'string' || !Number.isInteger(t.id)) throw new Unsupported(`added_tokens entry ${JSON.stringify(t)}`);
        added.set(t.content, t.id as number);
      }
      // Longest first, so a token that contains another wins.
      const addedPattern = added.size
        ? new RegExp([...added.keys()].sort((a, b) => b.length - a.length || (a < b ? -1 : 1)).map(escapeRegExp).join('|'), 'gu')
        : undefined;
      const preTokenize = buildPreTokenizer(json.pre_tokenizer);
      const wrapping = buildPostProcessor(json.post_processor);

      const padding = isObject(json.padding) ? json.padding : undefined;
      const truncation = isObject(json.truncation) ? json.truncation : undefined;
      // CLIP files have no padding section: HF pads them with <|endoftext|>, the end token.
      const padId = Number.isInteger(padding?.pad_id)
        ? (padding!.pad_id as number)
        : wrapping.after.length
          ? wrapping.after[wrapping.after.length - 1]
          : ([...added.entries()].find(([c]) => /pad/i.test(c))?.[1] ?? 0);

      return new Tokenizer(
        buildNormalizer(json.normalizer),
        preTokenize,
        model,
        vocab,
        added,
        addedPattern,
        wrapping,
        padId,
        truncation?.direction === 'Left',
        padding?.direction === 'Left',
      );
    } catch (e) {
      if (e instanceof Unsupported) throw new Error(`tokenizer ${where}: unsupported or malformed: ${e.message}`);
      throw new Error(`tokenizer ${where}: ${(e as Error).message}`);
    }
  }

  /** Number of ids the model can produce (largest id + 1), so an embedding table has a row for each. */
  get vocabSize(): number {
    let max = -1;
    for (const id of this.vocab.values()) max = Math.max(max, id);
    for (const id of this.addedTokens.values()) max = Math.max(max, id);
    return max + 1;
  }

  /** The id of a token string (vocabulary or added token). */
  tokenToId(token: string): number | undefined {
    return this.addedTokens.get(token) ?? this.vocab.get(token);
  }

  /** Normalised, pre-tokenised pieces of a text without added tokens: the words the model sees. */
  splitWords(text: string): string[] {
    return this.preTokenize([this.normalize(text)]);
  }

  /** The ids of a text, no special tokens added, no truncation, no padding. */
  tokenize(text: string): number[] {
    const ids: number[] = [];
    const plain = (segment: string) => {
      if (segment) for (const piece of this.splitWords(segment)) ids.push(...this.model(piece));
    };
    let last = 0;
    if (this.addedPattern) {
      for (const m of text.matchAll(this.addedPattern)) {
        plain(text.slice(last, m.index));
        ids.push(this.addedTokens.get(m[0])!);
        last = m.index! + m[0].length;
      }
    }
    plain(text.slice(last));
    return ids;
  }

  /**
   * Ids wrapped in the special tokens (CLIP: <|startoftext|> ... <|endoftext|>), truncated so that
   * the end token is kept, then padded with `padId` to exactly `maxLength`.
   */
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
    const { before, after } = this.wrapping;
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
