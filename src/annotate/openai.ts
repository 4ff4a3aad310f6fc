// The model-backed annotator: MegaPairs steps 3 and 4 against any OpenAI-compatible server (vLLM,
// SGLang, llama.cpp, Ollama, OpenAI). Step 1 shows the MLLM both images and asks for a relational
// description; step 2 asks the LLM to rewrite it as instructions. Every random choice (WORD_NUM,
// demonstrations, the server-side sampling seed) comes from the pair's rng, drawn before any
// request, so the same pair always sends the same requests whatever fails on the way.
import OpenAI, { APIConnectionError, APIConnectionTimeoutError, APIError, APIUserAbortError } from 'openai';
import sharp from 'sharp';
import type { OpenAIAnnotatorConfig } from '../config/schema.ts';
import type { Rng } from '../util/rng.ts';
import { AnnotationError, type Annotation, type Annotator, type PairImage, type PairToAnnotate } from './annotator.ts';
import { DEMONSTRATIONS, type Demonstration } from './demonstrations.ts';
import { describePrompt, instructPrompt, PROMPT_VERSION, SOURCE_LABEL, TARGET_LABEL } from './prompts.ts';

export interface OpenAIAnnotatorOptions {
  /** First retry waits about this long (jittered), doubling per attempt. Default 1000 ms. */
  backoffBaseMs?: number;
  /** Upper bound of one backoff wait. Default 30 000 ms. */
  backoffMaxMs?: number;
  /** The demonstration pool; defaults to ours (DEMONSTRATIONS). */
  demonstrations?: readonly Demonstration[];
}

/** A parse outcome: the value, or what was wrong with the reply. */
export type Parsed<T> = { ok: true; value: T } | { ok: false; problem: string };

type Step = 'describe' | 'instruct';
const MALFORMED_REASON: Record<Step, string> = {
  describe: 'malformed_description',
  instruct: 'malformed_instructions',
};
/** A server's Retry-After is honoured up to this long. */
const RETRY_AFTER_CAP_MS = 60_000;

export class OpenAIAnnotator implements Annotator {
  readonly name = 'openai';
  readonly model: string;
  // A #private field: the client holds the API key, and JSON.stringify / util.inspect of the
  // annotator must never show it.
  readonly #client: OpenAI;
  private readonly llm: string;
  private readonly wordNum: [number, number];
  private readonly pool: readonly Demonstration[];
  private readonly backoffBaseMs: number;
  private readonly backoffMaxMs: number;

  constructor(
    private readonly cfg: OpenAIAnnotatorConfig,
    env: NodeJS.ProcessEnv = process.env,
    options: OpenAIAnnotatorOptions = {},
  ) {
    this.#client = new OpenAI({
      // vLLM and friends need no key, but the SDK refuses to start without one.
      apiKey: env[cfg.api_key_env] || 'EMPTY',
      baseURL: cfg.base_url,
      organization: null,
      project: null,
      timeout: cfg.timeout_ms,
      // Attempts are counted here only, so `attempts` means what it says.
      maxRetries: 0,
    });
    this.llm = cfg.llm ?? cfg.mllm;
    this.model = this.llm === cfg.mllm ? cfg.mllm : `${cfg.mllm}+${this.llm}`;
    const [a, b] = cfg.word_num;
    this.wordNum = [Math.min(a, b), Math.max(a, b)];
    this.pool = options.demonstrations ?? DEMONSTRATIONS;
    this.backoffBaseMs = options.backoffBaseMs ?? 1000;
    this.backoffMaxMs = options.backoffMaxMs ?? 30_000;
  }

  async annotate(pair: PairToAnnotate, rng: Rng): Promise<Annotation> {
    // All draws first, in a fixed order: retries and failures never shift them.
    const wordNum = rng.int(this.wordNum[0], this.wordNum[1]);
    const demonstrations = rng.sample(this.pool, this.cfg.demonstrations);
    const seed = rng.int(0, 2 ** 31 - 1);

    // In-flight pairs are bounded by the caller (the annotate stage's mapPool, annotate.openai.concurrency).
    const [source, target] = await Promise.all([
      imageDataUrl(pair, 'source', pair.query, this.cfg.image_size),
      imageDataUrl(pair, 'target', pair.target, this.cfg.image_size),
    ]);
    const tokens = { prompt: 0, completion: 0 };
    const description = await this.complete(
      pair,
      'describe',
      {
        model: this.cfg.mllm,
        messages: [
          {
            role: 'user',
            content: [
              { type: 'text', text: SOURCE_LABEL },
              { type: 'image_url', image_url: { url: source } },
              { type: 'text', text: TARGET_LABEL },
              { type: 'image_url', image_url: { url: target } },
              { type: 'text', text: describePrompt(wordNum) },
            ],
          },
        ],
        temperature: this.cfg.temperature,
        max_tokens: this.cfg.max_tokens,
        seed,
      },
      parseDescription,
      tokens,
    );
    const instructions = await this.complete(
      pair,
      'instruct',
      {
        model: this.llm,
        messages: [{ role: 'user', content: instructPrompt(description, demonstrations, this.cfg.min_instructions) }],
        temperature: this.cfg.temperature,
        max_tokens: this.cfg.max_tokens,
        seed,
      },
      (reply) => parseInstructions(reply, this.cfg.min_instructions),
      tokens,
    );
    return {
      description,
      instructions,
      annotator: this.name,
      model: this.model,
      prompt_version: PROMPT_VERSION,
      prompt_tokens: tokens.prompt,
      completion_tokens: tokens.completion,
    };
  }

  /**
   * One chat completion, attempted up to `attempts` times: transport failures that may pass (429,
   * 5xx, timeouts, dropped connections) wait with backoff, a malformed reply is re-asked at once.
   * Tokens of every reply received are counted, since each was paid for.
   */
  private async complete<T>(
    pair: PairToAnnotate,
    step: Step,
    body: OpenAI.Chat.ChatCompletionCreateParamsNonStreaming & { seed: number },
    parse: (reply: string) => Parsed<T>,
    tokens: { prompt: number; completion: number },
  ): Promise<T> {
    const attempts = this.cfg.attempts;
    let lastProblem = '';
    for (let attempt = 1; attempt <= attempts; attempt++) {
      let completion: OpenAI.Chat.ChatCompletion;
      try {
        // A new seed per attempt: a seeded server would repeat a malformed reply word for word.
        completion = await this.#client.chat.completions.create({ ...body, seed: body.seed + attempt - 1 });
      } catch (err) {
        const failure = classifyRequestError(err, this.cfg, body.model);
        if (!failure) throw err;
        if (!failure.retryable || attempt === attempts) {
          throw new AnnotationError(
            failure.reason,
            `pair ${pair.pairId}: ${step} request to model "${body.model}" failed on attempt ${attempt} of ${attempts}: ${failure.detail}`,
          );
        }
        await sleep(this.backoffMs(attempt, failure.retryAfterMs));
        continue;
      }
      tokens.prompt += completion.usage?.prompt_tokens ?? 0;
      tokens.completion += completion.usage?.completion_tokens ?? 0;
      const choice = completion.choices?.[0];
      const reply = choice?.message?.content ?? '';
      const cutOff = choice?.finish_reason === 'length';
      const parsed = parse(reply);
      // A description cut at max_tokens ends mid-sentence even when its structure looks right.
      const truncated = cutOff && step === 'describe';
      if (parsed.ok && !truncated) return parsed.value;
      const problem = parsed.ok ? 'cut off at max_tokens' : cutOff ? `${parsed.problem} (cut off at max_tokens)` : parsed.problem;
      lastProblem = `${problem}; reply: ${excerpt(reply)}`;
    }
    throw new AnnotationError(
      MALFORMED_REASON[step],
      `pair ${pair.pairId}: ${step} reply from model "${body.model}" was malformed on all ${attempts} attempt(s): ${lastProblem}`,
    );
  }

  /** Exponential backoff with jitter (half fixed, half random), at least a server's Retry-After. */
  private backoffMs(attempt: number, retryAfterMs: number | undefined): number {
    const cap = Math.min(this.backoffMaxMs, this.backoffBaseMs * 2 ** (attempt - 1));
    // Math.random, not the pair's rng: waiting is timing, and must not touch reproducible draws.
    const wait = cap / 2 + (Math.random() * cap) / 2;
    return retryAfterMs === undefined ? wait : Math.max(wait, Math.min(retryAfterMs, RETRY_AFTER_CAP_MS));
  }
}

// ---------------------------------------------------------------------------------------------
// Images

/** The image as the MLLM gets it: JPEG (alpha flattened on white) fitting inside size x size. */
async function imageDataUrl(pair: PairToAnnotate, role: 'source' | 'target', image: PairImage, size: number): Promise<string> {
  try {
    const bytes = await image.bytes();
    const jpeg = await sharp(bytes)
      .rotate() // honour EXIF orientation: the model should see what a person sees
      .flatten({ background: '#ffffff' })
      .resize({ width: size, height: size, fit: 'inside', withoutEnlargement: true })
      .jpeg({ quality: 90 })
      .toBuffer();
    return `data:image/jpeg;base64,${jpeg.toString('base64')}`;
  } catch (err) {
    throw new AnnotationError('image_error', `pair ${pair.pairId}: cannot prepare the ${role} image ${image.key}: ${errorText(err)}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Transport errors

interface RequestFailure {
  reason: string;
  retryable: boolean;
  detail: string;
  retryAfterMs?: number;
}

/** Maps an SDK error to a stable reason; null for anything that is not a request failure (a bug). */
function classifyRequestError(err: unknown, cfg: OpenAIAnnotatorConfig, model: string): RequestFailure | null {
  if (err instanceof APIUserAbortError) return { reason: 'aborted', retryable: false, detail: 'request aborted' };
  // Subclass before superclass: a timeout is also a connection error.
  if (err instanceof APIConnectionTimeoutError) {
    return { reason: 'timeout', retryable: true, detail: `no reply within ${cfg.timeout_ms} ms from ${cfg.base_url}` };
  }
  if (err instanceof APIConnectionError) {
    const cause = err.cause instanceof Error ? `: ${errorText(err.cause)}` : '';
    return { reason: 'connection_error', retryable: true, detail: `connection to ${cfg.base_url} failed${cause}` };
  }
  if (err instanceof APIError && typeof err.status === 'number') {
    const status = err.status;
    const retryable = status === 408 || status === 409 || status === 429 || status >= 500;
    let hint = '';
    if (status === 401 || status === 403) hint = ` (check the key in the environment variable ${cfg.api_key_env})`;
    if (status === 404) hint = ` (does ${cfg.base_url} serve model "${model}"?)`;
    return { reason: 'http_error', retryable, detail: `HTTP ${status}: ${excerpt(err.message)}${hint}`, retryAfterMs: retryAfterMs(err) };
  }
  return null;
}

function retryAfterMs(err: APIError): number | undefined {
  const value = err.headers?.get('retry-after');
  if (!value) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

// ---------------------------------------------------------------------------------------------
// Replies

/** Reasoning models (DeepSeek-R1, Qwen3 ...) may prefix their answer with a <think> block. */
function stripReasoning(reply: string): string {
  return reply.replace(/<think>[\s\S]*?<\/think>/gi, '').trim();
}

/**
 * A step-3 reply: non-empty and in the Source/Target template. A preamble line such as
 * "Here is the summary:" is dropped; wording inside the template is the model's own.
 */
export function parseDescription(reply: string): Parsed<string> {
  let text = stripReasoning(reply);
  const fenced = /^```[a-z]*\s*([\s\S]*?)\s*```$/i.exec(text);
  if (fenced) text = fenced[1];
  const start = text.search(/["'“]?both images\b/i);
  if (start > 0 && /[:\n]\s*$/.test(text.slice(0, start))) text = text.slice(start);
  text = text.replace(/\s+/g, ' ').trim();
  // The template is often echoed inside quotes.
  const quoted = /^["'“](.*)["'”]$/.exec(text);
  if (quoted) text = quoted[1].trim();
  if (!text) return { ok: false, problem: 'empty reply' };
  const hasSource = /\bsource image\b/i.test(text);
  const hasTarget = /\btarget image\b/i.test(text);
  if (!hasSource || !hasTarget) {
    const missing = [hasSource ? '' : '"Source Image"', hasTarget ? '' : '"Target Image"'].filter(Boolean).join(' and ');
    return { ok: false, problem: `not in the "Both images ... However, the Source Image ..., whereas the Target Image ..." form (no ${missing})` };
  }
  return { ok: true, value: text };
}

/**
 * A step-4 reply: a JSON list of at least `min` non-empty strings. Tolerated: code fences, prose
 * around the list, trailing commas, duplicates (dropped). Not tolerated: non-string items, empty
 * strings, too few distinct instructions.
 */
export function parseInstructions(reply: string, min: number): Parsed<string[]> {
  let text = stripReasoning(reply);
  const fenced = /```[a-z]*\s*([\s\S]*?)```/i.exec(text);
  if (fenced) text = fenced[1];
  let list: unknown[] | undefined;
  let firstProblem: string | undefined;
  // Prose may hold brackets of its own ("[3 queries]"): try each "[" until one parses as a list.
  for (let from = text.indexOf('['); from >= 0; from = text.indexOf('[', from + 1)) {
    const candidate = balancedList(text, from);
    if (candidate === null) {
      firstProblem ??= 'unterminated JSON list';
      continue;
    }
    try {
      const value: unknown = JSON.parse(dropTrailingCommas(candidate));
      if (Array.isArray(value) && value.some((v) => typeof v === 'string')) {
        list = value;
        break;
      }
      firstProblem ??= 'the list holds no strings';
    } catch (err) {
      firstProblem ??= `not valid JSON (${errorText(err)})`;
    }
  }
  if (!list) return { ok: false, problem: firstProblem ?? 'no JSON list in the reply' };

  const seen = new Set<string>();
  const instructions: string[] = [];
  for (const [i, item] of list.entries()) {
    if (typeof item !== 'string') return { ok: false, problem: `item ${i} is ${item === null ? 'null' : `a ${typeof item}`}, not a string` };
    const text = item.replace(/\s+/g, ' ').trim();
    if (!text) return { ok: false, problem: `item ${i} is an empty string` };
    const key = text.toLowerCase();
    if (seen.has(key)) continue;
    seen.add(key);
    instructions.push(text);
  }
  if (instructions.length < min) {
    return { ok: false, problem: `only ${instructions.length} distinct instruction(s), at least ${min} needed` };
  }
  return { ok: true, value: instructions };
}

/** The text of the JSON list opening at `from`, to its matching "]", or null if it never closes. */
function balancedList(text: string, from: number): string | null {
  let depth = 0;
  let inString = false;
  for (let i = from; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === '[' || c === '{') depth++;
    else if (c === ']' || c === '}') {
      depth--;
      if (depth === 0) return text.slice(from, i + 1);
    }
  }
  return null;
}

/** Removes commas that directly precede "]" or "}", outside strings (`["a", "b",]`). */
function dropTrailingCommas(json: string): string {
  let out = '';
  let inString = false;
  for (let i = 0; i < json.length; i++) {
    const c = json[i];
    if (inString) {
      out += c;
      if (c === '\\') out += json[++i] ?? '';
      else if (c === '"') inString = false;
      continue;
    }
    if (c === '"') inString = true;
    if (c === ',' && /^\s*[\]}]/.test(json.slice(i + 1))) continue;
    out += c;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Small helpers

/** A one-line, bounded excerpt of a reply or message, for error messages. */
function excerpt(text: string, max = 160): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  if (!flat) return '(empty)';
  return JSON.stringify(flat.length > max ? `${flat.slice(0, max)}…` : flat);
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
