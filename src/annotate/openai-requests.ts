// The requests of the openai annotator and the checks of their replies, shared by its two modes
// (openai.ts online, openai-batch.ts by batch): the same draws in the same order, the same bodies
// key for key (so the same request hash and the same cached reply), the same verdict on a reply
// and the same ledger messages. A batch run and an online run of a config annotate alike.
import type OpenAI from 'openai';
import type { OpenAIAnnotatorConfig } from '../config/schema.ts';
import type { Rng } from '../util/rng.ts';
import { AnnotationError, type PairToAnnotate } from './annotator.ts';
import type { Demonstration } from './demonstrations.ts';
import { imageDataUrl, ImageBytesUnreadable } from './image-url.ts';
import { describePrompt, instructPrompt, SOURCE_LABEL, TARGET_LABEL } from './prompts.ts';
import { parseDescription, parseInstructions, rejectionText } from './replies.ts';
import type { CachedCompletion } from './request-cache.ts';
import type { Step } from './endpoint-settings.ts';
import { errorText } from './text.ts';

export type Body = OpenAI.Chat.ChatCompletionCreateParamsNonStreaming & { seed: number };

/** A pair's random choices, drawn before any request. */
export interface PairDraws {
  wordNum: number;
  demonstrations: Demonstration[];
  seed: number;
}

/** All draws first, in a fixed order: retries and failures never shift them. */
export function drawPair(rng: Rng, cfg: OpenAIAnnotatorConfig, pool: readonly Demonstration[]): PairDraws {
  const [a, b] = cfg.word_num;
  const wordNum = rng.int(Math.min(a, b), Math.max(a, b));
  const demonstrations = rng.sample(pool, cfg.demonstrations);
  const seed = rng.int(0, 2 ** 31 - 1);
  return { wordNum, demonstrations, seed };
}

/** The two images as data URLs; one that cannot be prepared is the pair's fault, unreadable bytes the environment's. */
export async function pairImages(pair: PairToAnnotate, size: number): Promise<[string, string]> {
  const image = async (role: 'source' | 'target', img: PairToAnnotate['query']) => {
    try {
      return await imageDataUrl(img, size);
    } catch (err) {
      if (err instanceof ImageBytesUnreadable) throw err; // fails the unit, which is retried
      throw new AnnotationError('image_error', `pair ${pair.pairId}: cannot prepare the ${role} image ${img.key}: ${errorText(err)}`);
    }
  };
  return Promise.all([image('source', pair.query), image('target', pair.target)]);
}

/** Step 1's body before its attempt's seed: both images and the describe prompt. */
export function describeBase(cfg: OpenAIAnnotatorConfig, model: string, [source, target]: [string, string], d: PairDraws): Body {
  return {
    model,
    messages: [
      {
        role: 'user',
        content: [
          { type: 'text', text: SOURCE_LABEL },
          { type: 'image_url', image_url: { url: source } },
          { type: 'text', text: TARGET_LABEL },
          { type: 'image_url', image_url: { url: target } },
          { type: 'text', text: describePrompt(d.wordNum) },
        ],
      },
    ],
    temperature: cfg.temperature,
    max_tokens: cfg.max_tokens,
    seed: d.seed,
  };
}

/** Step 2's body before its attempt's seed: the description rewritten as instructions. */
export function instructBase(cfg: OpenAIAnnotatorConfig, model: string, description: string, d: PairDraws): Body {
  return {
    model,
    messages: [{ role: 'user', content: instructPrompt(description, d.demonstrations, cfg.min_instructions) }],
    temperature: cfg.temperature,
    max_tokens: cfg.max_tokens,
    seed: d.seed,
  };
}

/** The JSON schema of the instruction list, for servers with structured output. */
function instructionsFormat(min: number): OpenAI.ResponseFormatJSONSchema {
  return {
    type: 'json_schema',
    json_schema: {
      name: 'instructions',
      strict: true,
      schema: {
        type: 'object',
        properties: { instructions: { type: 'array', items: { type: 'string' }, minItems: min } },
        required: ['instructions'],
        additionalProperties: false,
      },
    },
  };
}

/**
 * The body of one attempt: a new seed per attempt (a seeded server would repeat a malformed reply
 * word for word), and structured output for the instructions while the server takes it.
 */
export function attemptBody(cfg: OpenAIAnnotatorConfig, step: Step, base: Body, attempt: number, structured: boolean): Body {
  const body: Body = { ...base, seed: base.seed + attempt - 1 };
  if (step === 'instruct' && structured) body.response_format = instructionsFormat(cfg.min_instructions);
  return body;
}

/** What a step's reply is checked for: the description (describe) or the instructions (instruct). */
export type StepValue<S extends Step> = S extends 'describe' ? string : string[];

/** A reply's verdict: the step's value, or why it is rejected (the ledger's reason once attempts run out). */
export type Checked<T> = { ok: true; value: T } | { ok: false; reason: string; text: string };

export function checkDescription(cfg: OpenAIAnnotatorConfig, d: PairDraws, completion: CachedCompletion): Checked<string> {
  return checkReply('describe', completion, (reply) => parseDescription(reply, { wordNum: d.wordNum, tolerance: cfg.word_num_tolerance }));
}

export function checkInstructions(cfg: OpenAIAnnotatorConfig, description: string, completion: CachedCompletion): Checked<string[]> {
  return checkReply('instruct', completion, (reply) => parseInstructions(reply, { min: cfg.min_instructions, words: cfg.instruction_words, description }));
}

function checkReply<T>(
  step: Step,
  completion: CachedCompletion,
  parse: (reply: string) => { ok: true; value: T } | { ok: false; reason: string; problem: string },
): Checked<T> {
  const cutOff = completion.finish_reason === 'length';
  const parsed = parse(completion.content);
  // A description cut at max_tokens ends mid-sentence even when its structure looks right.
  if (parsed.ok && !(cutOff && step === 'describe')) return parsed;
  return parsed.ok
    ? { ok: false, reason: 'description_cut_off', text: rejectionText('cut off at max_tokens', completion.content) }
    : { ok: false, reason: parsed.reason, text: rejectionText(cutOff ? `${parsed.problem} (cut off at max_tokens)` : parsed.problem, completion.content) };
}

/** A step whose replies were rejected on every attempt: the pair's own fault. */
export function rejectedOnAll(pair: PairToAnnotate, step: Step, model: string, attempts: number, last: { reason: string; text: string }): AnnotationError {
  return new AnnotationError(last.reason, `pair ${pair.pairId}: ${step} reply from model "${model}" rejected on all ${attempts} attempt(s): ${last.text}`);
}

/** A request the server refused as the request's own fault, on the attempt it gave up. */
export function refused(pair: PairToAnnotate, step: Step, model: string, attempt: number, attempts: number, detail: string): AnnotationError {
  return new AnnotationError('http_error', `pair ${pair.pairId}: ${step} request to model "${model}" failed on attempt ${attempt} of ${attempts}: ${detail}`);
}
