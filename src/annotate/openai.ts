// The model-backed annotator: MegaPairs steps 3 and 4 against any OpenAI-compatible server (vLLM,
// SGLang, llama.cpp, Ollama, OpenAI). Step 1 shows the MLLM both images and asks for a relational
// description; step 2 asks the LLM to rewrite it as instructions. Every random choice (WORD_NUM,
// demonstrations, the server-side sampling seed) comes from the pair's rng, drawn before any
// request, so the same pair always sends the same requests whatever fails on the way, and the
// request cache finds every reply already paid for.
//
// Faults are sorted by whose they are. The pair's own (a reply that stays malformed, a request the
// server refuses as bad) end in an AnnotationError, for the ledger. The environment's (unreachable,
// timeouts, 429, 5xx while the endpoint is failing for everyone) are retried without limit of
// attempts, paced by the shared Endpoint, until it declares the endpoint down: then the error
// fails the unit, which is retried, and no pair is lost to it.
//
// `openaiBackend` is how the pipeline knows it (backend.ts): what decides its annotations, its
// preflight, its plan and cost, and the annotator of a process.
import OpenAI, { APIConnectionError, APIConnectionTimeoutError, APIError, APIUserAbortError } from 'openai';
import type { Config, OpenAIAnnotatorConfig } from '../config/schema.ts';
import type { SharedSlots } from '../core/shared-limits.ts';
import type { Rng } from '../util/rng.ts';
import {
  newTally,
  type Annotation,
  type AnnotationTally,
  type PairAnnotator,
  type PairToAnnotate,
  type UnitAnnotations,
  type UnitIO,
  type UnitPair,
} from './annotator.ts';
import type { AnnotatorBackend, Tokens } from './backend.ts';
import { DEMONSTRATIONS, type Demonstration } from './demonstrations.ts';
import { BatchJournal } from './batch/journal.ts';
import { annotateEachPair } from './each-pair.ts';
import { OpenAIBatchAnnotator } from './openai-batch.ts';
import { endpointFor, type Endpoint, type Lease, type Outcome } from './endpoint.ts';
import { checkEndpoints } from './endpoint-check.ts';
import { endpointLimit, endpointsOf, STEPS, type EndpointSettings, type Step } from './endpoint-settings.ts';
import {
  attemptBody,
  type Body,
  type Checked,
  checkDescription,
  checkInstructions,
  describeBase,
  drawPair,
  instructBase,
  pairImages,
  refused,
  rejectedOnAll,
} from './openai-requests.ts';
import { PROMPT_VERSION } from './prompts.ts';
import { RequestCache, requestHash, type CachedCompletion } from './request-cache.ts';
import { errorText, excerpt } from './text.ts';
import { annotateLog } from './log.ts';

export interface OpenAIAnnotatorOptions {
  /** First retry waits about this long (jittered), doubling per attempt. Default 1000 ms. */
  backoffBaseMs?: number;
  /** Upper bound of one backoff wait. Default 30 000 ms. */
  backoffMaxMs?: number;
  /** The demonstration pool; defaults to ours (DEMONSTRATIONS). */
  demonstrations?: readonly Demonstration[];
  /** Where replies are kept (the work storage); without one every request goes to the server. */
  cache?: RequestCache;
  /** Lines about endpoints going down and coming back; default stderr. */
  log?: (line: string) => void;
  /** Distributed runs: each endpoint's slots shared by every worker process and thread. */
  shared?: (settings: EndpointSettings) => SharedSlots;
}

/** A request the server answered with an error that is the request's own (4xx, or 5xx while others succeed). */
class RequestRefused extends Error {
  constructor(
    readonly status: number,
    readonly retryable: boolean,
    message: string,
  ) {
    super(message);
  }
}

/** The section of a config whose annotator is this one. */
function section(config: Config): OpenAIAnnotatorConfig {
  // The schema refuses annotator "openai" without its section; this guards hand-built configs.
  const cfg = config.annotate.openai;
  if (!cfg) throw new Error('annotate.annotator is "openai" but annotate.openai (base_url, mllm, ...) is missing');
  return cfg;
}

/** USD for tokens by model at `price` (per million tokens), and the models it has no price for. */
function priced(tokens: Record<string, Tokens>, price: OpenAIAnnotatorConfig['price']): { usd?: number; unpriced: string[] } {
  const models = Object.keys(tokens);
  const unpriced = models.filter((m) => !price?.[m]);
  if (!price || unpriced.length) return { unpriced };
  return { usd: models.reduce((a, m) => a + (tokens[m].prompt * price[m].prompt + tokens[m].completion * price[m].completion) / 1e6, 0), unpriced };
}

/** Seconds one request is expected to take when nothing measured it: a fixed start, prefill and decode at a modest pace. */
export function expectedLatencyS(t: Tokens): number {
  return 0.5 + t.prompt / 5000 + t.completion / 40;
}

/**
 * The online run's wall time: each step's endpoint answers `concurrency` requests at a time, each
 * taking the expected latency, unless requests_per_s or tokens_per_min bound it lower. The two
 * steps run side by side on their endpoints (pairs flow from one to the other), so the slower sets it.
 */
function onlineHours(endpoints: Record<Step, EndpointSettings>, pairs: number, tokensPerRequest: Record<string, Tokens>): { hours: number; basis: string } {
  const parts: string[] = [];
  let seconds = 0;
  for (const step of STEPS) {
    const s = endpoints[step];
    const t = tokensPerRequest[step];
    const latency = expectedLatencyS(t);
    const perSecond = Math.min(
      s.concurrency / latency,
      s.requests_per_s ?? Number.POSITIVE_INFINITY,
      s.tokens_per_min ? s.tokens_per_min / 60 / Math.max(1, t.prompt + t.completion) : Number.POSITIVE_INFINITY,
    );
    seconds = Math.max(seconds, pairs / perSecond);
    parts.push(
      `${step}: ${perSecond.toFixed(1)} requests/s (concurrency ${s.concurrency} x ${latency.toFixed(1)} s expected latency${s.requests_per_s ? `, requests_per_s ${s.requests_per_s}` : ''}${s.tokens_per_min ? `, tokens_per_min ${s.tokens_per_min}` : ''})`,
    );
  }
  return { hours: seconds / 3600, basis: parts.join('; ') };
}

export const openaiBackend: AnnotatorBackend = {
  name: 'openai',
  /**
   * Each step's model and the prompts' settings. Where the endpoints are and how fast they are
   * asked (limits, timeouts, the circuit, prices, online or batch and its settings) decide nothing.
   */
  decidedBy(config) {
    const cfg = section(config);
    const {
      base_url,
      api_key_env,
      mllm,
      llm,
      describe,
      instruct,
      concurrency,
      requests_per_s,
      tokens_per_min,
      timeout_ms,
      down_after_s,
      retry_every_s,
      price,
      mode,
      batch,
      ...prompts
    } = cfg;
    const endpoints = endpointsOf(cfg);
    const models = Object.fromEntries(STEPS.map((step) => [`annotate.openai.${step}.model`, endpoints[step].model]));
    return { ...models, 'annotate.openai': prompts };
  },
  preflight: (config, env) => checkEndpoints(section(config), env),
  /** Two requests a pair, describe and instruct, each to its step's model. */
  estimate(config, { pairs, tokensPerRequest }) {
    const cfg = section(config);
    const endpoints = endpointsOf(cfg);
    const requests = Object.fromEntries(STEPS.map((step) => [step, pairs]));
    const tokens: Record<string, Tokens> = {};
    for (const step of STEPS) {
      const t = (tokens[endpoints[step].model] ??= { prompt: 0, completion: 0 });
      t.prompt += tokensPerRequest[step].prompt * pairs;
      t.completion += tokensPerRequest[step].completion * pairs;
    }
    const { usd, unpriced } = priced(tokens, cfg.price);
    const batchUsd = usd === undefined ? undefined : usd * cfg.batch.price_factor;
    const modes = {
      online: { chosen: cfg.mode === 'online', costUsd: usd, ...onlineHours(endpoints, pairs, tokensPerRequest) },
      batch: {
        chosen: cfg.mode === 'batch',
        costUsd: batchUsd,
        // At least two rounds of batches (describe, then instruct from the descriptions); a reply
        // re-asked adds a round.
        hours: 2 * cfg.batch.expected_hours,
        basis: `2 rounds (describe, instruct) of annotate.openai.batch.expected_hours = ${cfg.batch.expected_hours} h each; more when replies are re-asked`,
      },
    };
    return {
      requests,
      tokens,
      costUsd: cfg.mode === 'batch' ? batchUsd : usd,
      unpriced: { models: unpriced, key: 'annotate.openai.price' },
      modes,
    };
  },
  /** At the batch price (`batch.price_factor` of `price`) when the run sent by batch. */
  cost(config, tokens) {
    if (!Object.keys(tokens).length) return undefined;
    const cfg = section(config);
    const usd = priced(tokens, cfg.price).usd;
    return usd === undefined ? undefined : cfg.mode === 'batch' ? usd * cfg.batch.price_factor : usd;
  },
  sendsRequests: true,
  async open(config, { work, sharedLimits, env }) {
    const cfg = section(config);
    if (cfg.mode === 'batch') {
      return new OpenAIBatchAnnotator(cfg, {
        cache: new RequestCache(work),
        journal: new BatchJournal(work),
        pool: DEMONSTRATIONS,
        env,
        log: annotateLog,
      });
    }
    // A lease outlives the longest request, so only a dead holder's expires.
    const leaseMs = cfg.timeout_ms + 10_000;
    return new OpenAIAnnotator(cfg, env, {
      cache: new RequestCache(work),
      shared: sharedLimits && ((s) => sharedLimits.slots(endpointLimit(s, leaseMs))),
    });
  },
};

export class OpenAIAnnotator implements PairAnnotator {
  readonly name = 'openai';
  readonly model: string;
  // #private fields: the clients hold API keys, and JSON.stringify / util.inspect of the
  // annotator must never show them.
  readonly #clients: Record<Step, OpenAI>;
  readonly #endpoints: Record<Step, Endpoint>;
  private readonly settings: Record<Step, EndpointSettings>;
  private readonly pool: readonly Demonstration[];
  private readonly backoffBaseMs: number;
  private readonly backoffMaxMs: number;
  private readonly cache?: RequestCache;
  /** Off once the instruct server refuses `response_format`. */
  private structured: boolean;
  /** Requests being answered now, by hash: a second identical request waits for the first. */
  private readonly inFlight = new Map<string, Promise<CachedCompletion>>();

  constructor(
    private readonly cfg: OpenAIAnnotatorConfig,
    env: NodeJS.ProcessEnv = process.env,
    options: OpenAIAnnotatorOptions = {},
  ) {
    const log = options.log ?? annotateLog;
    const settings = endpointsOf(cfg);
    this.settings = settings;
    this.#clients = Object.fromEntries(
      STEPS.map((s) => [
        s,
        new OpenAI({
          // vLLM and friends need no key, but the SDK refuses to start without one.
          apiKey: env[settings[s].api_key_env] || 'EMPTY',
          baseURL: settings[s].base_url,
          organization: null,
          project: null,
          timeout: cfg.timeout_ms,
          // Retries are decided here only, paced by the shared endpoint.
          maxRetries: 0,
        }),
      ]),
    ) as Record<Step, OpenAI>;
    this.#endpoints = Object.fromEntries(
      STEPS.map((s) => [
        s,
        endpointFor(settings[s], {
          downAfterMs: cfg.down_after_s * 1000,
          retryEveryMs: cfg.retry_every_s * 1000,
          log,
          shared: options.shared?.(settings[s]),
        }),
      ]),
    ) as Record<Step, Endpoint>;
    const [mllm, llm] = [settings.describe.model, settings.instruct.model];
    this.model = llm === mllm ? mllm : `${mllm}+${llm}`;
    this.pool = options.demonstrations ?? DEMONSTRATIONS;
    this.backoffBaseMs = options.backoffBaseMs ?? 1000;
    this.backoffMaxMs = options.backoffMaxMs ?? 30_000;
    this.cache = options.cache;
    this.structured = cfg.structured_output;
  }

  /** The two endpoints this annotator sends to (shared with every annotator of the process). */
  get endpoints(): Record<Step, Endpoint> {
    return this.#endpoints;
  }

  /**
   * Pairs a unit works on at once: twice what keeps both endpoints' slots full (a pair waits on one
   * step at a time, and some wait out a Retry-After or a straggler). Requests themselves are bounded
   * by the endpoints, process-wide.
   */
  get pairsInFlight(): number {
    return 2 * (this.settings.describe.concurrency + this.settings.instruct.concurrency);
  }

  annotateUnit(pairs: readonly UnitPair[], io: UnitIO): Promise<UnitAnnotations> {
    return annotateEachPair(this, pairs, io, this.pairsInFlight);
  }

  async annotate(pair: PairToAnnotate, rng: Rng, tally: AnnotationTally = newTally()): Promise<Annotation> {
    const draws = drawPair(rng, this.cfg, this.pool);
    const images = await pairImages(pair, this.cfg.image_size);
    const tokens = { prompt: 0, completion: 0 };
    const description = await this.complete(
      pair,
      'describe',
      describeBase(this.cfg, this.settings.describe.model, images, draws),
      (c) => checkDescription(this.cfg, draws, c),
      tally,
      tokens,
    );
    const instructions = await this.complete(
      pair,
      'instruct',
      instructBase(this.cfg, this.settings.instruct.model, description, draws),
      (c) => checkInstructions(this.cfg, description, c),
      tally,
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
   * One step, attempted up to `attempts` times: a malformed reply is re-asked with the next seed,
   * a request the server refuses is retried with backoff. Tokens of every reply are counted, since
   * each was paid for.
   */
  private async complete<T>(
    pair: PairToAnnotate,
    step: Step,
    base: Body,
    check: (completion: CachedCompletion) => Checked<T>,
    tally: AnnotationTally,
    tokens: { prompt: number; completion: number },
  ): Promise<T> {
    const attempts = this.cfg.attempts;
    const model = base.model;
    let last: { reason: string; text: string } = { reason: `malformed_${step}`, text: '' };
    for (let attempt = 1; attempt <= attempts; attempt++) {
      const structured = step === 'instruct' && this.structured;
      const body = attemptBody(this.cfg, step, base, attempt, structured);
      let completion: CachedCompletion;
      try {
        completion = await this.completion(step, body, tally);
      } catch (err) {
        if (!(err instanceof RequestRefused)) throw err;
        if (structured && (err.status === 400 || err.status === 422)) {
          // The server does not do structured output: ask again without it, this attempt still.
          this.structured = false;
          attempt--;
          continue;
        }
        if (!err.retryable || attempt === attempts) throw refused(pair, step, model, attempt, attempts, err.message);
        await sleep(this.backoffMs(attempt));
        continue;
      }
      tokens.prompt += completion.prompt_tokens;
      tokens.completion += completion.completion_tokens;
      const t = (tally.tokens[model] ??= { prompt: 0, completion: 0 });
      t.prompt += completion.prompt_tokens;
      t.completion += completion.completion_tokens;
      const checked = check(completion);
      if (checked.ok) return checked.value;
      last = checked;
    }
    throw rejectedOnAll(pair, step, model, attempts, last);
  }

  /** The reply to exactly this request: from the cache, from an identical request in flight, or sent and kept. */
  private completion(step: Step, body: Body, tally: AnnotationTally): Promise<CachedCompletion> {
    const hash = requestHash(body);
    const counts = (tally.endpoints[step] ??= { requests: 0, cached: 0, errors: {} });
    const pending = this.inFlight.get(hash);
    if (pending) {
      // Served by a request already on its way: counted as a cache hit, it costs nothing more.
      counts.cached++;
      this.#endpoints[step].stats.cached++;
      return pending;
    }
    const p = (async () => {
      const cached = await this.cache?.get(hash);
      if (cached) {
        counts.cached++;
        this.#endpoints[step].stats.cached++;
        return cached;
      }
      const completion = await this.send(step, body, counts);
      // Kept before it is used: from here on, no kill or retry pays for it again.
      await this.cache?.put(hash, body.model, completion);
      return completion;
    })();
    this.inFlight.set(hash, p);
    p.then(
      () => this.inFlight.delete(hash),
      () => this.inFlight.delete(hash),
    );
    return p;
  }

  /**
   * Sends until the server answers: failures of the environment are retried here (the endpoint
   * paces them and throws EndpointDownError past down_after_s); a refusal of the request itself
   * is thrown as RequestRefused for `complete` to count against the attempts.
   */
  private async send(step: Step, body: Body, counts: AnnotationTally['endpoints'][string]): Promise<CachedCompletion> {
    const endpoint = this.#endpoints[step];
    for (let failures = 1; ; failures++) {
      const r = await this.hedged(step, body, counts);
      if (r.completion) return r.completion;
      const { outcome, detail, status } = r;
      if (outcome.kind === 'client_error' && status !== undefined) {
        if (status === 401 || status === 403 || status === 404) {
          // Wrong key or model: every request would fail alike, so the unit fails, not the pair.
          const s = this.settings[step];
          const hint =
            status === 404
              ? `does ${s.base_url} serve model "${s.model}"? (${s.keys.model})`
              : `check the key in the environment variable ${s.api_key_env} (${s.keys.api_key_env})`;
          throw new Error(`${step} endpoint ${s.base_url}: ${detail} (${hint})`);
        }
        throw new RequestRefused(status, status === 408 || status === 409, detail);
      }
      // A 5xx while the endpoint answers others is held against this request's attempts.
      if (outcome.kind === 'server_error' && !endpoint.isDown) throw new RequestRefused(status ?? 500, true, detail);
      // A 429'd request waits its Retry-After (endpoint-wide pauses and open circuits happen in
      // acquire); timeouts and drops wait a little.
      if (outcome.kind === 'rate_limited') await sleep(outcome.retryAfterMs ?? this.backoffMs(Math.min(failures, 5)));
      if (outcome.kind === 'timeout' || outcome.kind === 'server_error') await sleep(this.backoffMs(Math.min(failures, 5)));
    }
  }

  /**
   * One request, with a copy sent when it straggles: past the endpoint's straggler time it gives
   * up its slot, and whichever of the two answers first is used (the other is aborted). So a hung
   * request holds neither a slot nor its pair longer than a slow reply would.
   */
  private hedged(step: Step, body: Body, counts: AnnotationTally['endpoints'][string]): Promise<SendResult> {
    const endpoint = this.#endpoints[step];
    return new Promise<SendResult>((resolve, reject) => {
      // The copies still running: only they are aborted once one answers (an abort costs an
      // AbortError each, and most requests have no copy).
      const controllers = new Set<AbortController>();
      let running = 0;
      let settled = false;
      let timer: NodeJS.Timeout | undefined;
      let lastFailure: SendResult | undefined;
      const settle = (r: SendResult | Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        for (const c of controllers) c.abort();
        if (r instanceof Error) reject(r);
        else resolve(r);
      };
      const start = (copy: boolean) => {
        running++;
        const controller = new AbortController();
        controllers.add(controller);
        const onSent = (lease: Lease) => {
          if (copy) return;
          timer = setTimeout(() => {
            if (settled) return;
            lease.release();
            bump(counts.errors, 'straggler');
            endpoint.stats.errors.straggler = (endpoint.stats.errors.straggler ?? 0) + 1;
            start(true);
          }, endpoint.stragglerAfterMs(this.cfg.timeout_ms));
        };
        this.sendOnce(step, body, controller.signal, onSent, counts).then(
          (r) => {
            running--;
            controllers.delete(controller);
            if (r.completion || running === 0) settle(r.completion ? r : (lastFailure = r));
            else lastFailure = r; // the other copy may still answer
          },
          (err: Error) => {
            running--;
            controllers.delete(controller);
            if (running === 0) settle(lastFailure ?? err);
          },
        );
      };
      start(false);
    });
  }

  private async sendOnce(
    step: Step,
    body: Body,
    signal: AbortSignal,
    onSent: (lease: Lease) => void,
    counts: AnnotationTally['endpoints'][string],
  ): Promise<SendResult> {
    const lease = await this.#endpoints[step].acquire();
    if (signal.aborted) {
      lease.finish({ kind: 'aborted' });
      return { outcome: { kind: 'aborted' }, detail: 'aborted' };
    }
    counts.requests++;
    onSent(lease);
    const started = Date.now();
    try {
      const c = await this.#clients[step].chat.completions.create(body, { signal, timeout: this.cfg.timeout_ms });
      const choice = c.choices?.[0];
      const completion: CachedCompletion = {
        content: choice?.message?.content ?? '',
        finish_reason: choice?.finish_reason ?? '',
        prompt_tokens: c.usage?.prompt_tokens ?? 0,
        completion_tokens: c.usage?.completion_tokens ?? 0,
      };
      const endpoint = this.#endpoints[step];
      endpoint.stats.prompt_tokens += completion.prompt_tokens;
      endpoint.stats.completion_tokens += completion.completion_tokens;
      lease.finish({ kind: 'ok', latencyMs: Date.now() - started, tokens: completion.prompt_tokens + completion.completion_tokens });
      return { outcome: { kind: 'ok', latencyMs: 0, tokens: 0 }, completion, detail: '' };
    } catch (err) {
      let r: SendResult;
      try {
        r = classifyRequestError(err, this.cfg, this.settings[step]);
      } catch (bug) {
        lease.release();
        throw bug;
      }
      lease.finish(r.outcome);
      if (r.outcome.kind !== 'aborted') bump(counts.errors, r.outcome.kind);
      return r;
    }
  }

  /** Exponential backoff with jitter (half fixed, half random). */
  private backoffMs(attempt: number): number {
    const cap = Math.min(this.backoffMaxMs, this.backoffBaseMs * 2 ** (attempt - 1));
    // Math.random, not the pair's rng: waiting is timing, and must not touch reproducible draws.
    return cap / 2 + (Math.random() * cap) / 2;
  }
}

interface SendResult {
  outcome: Outcome;
  completion?: CachedCompletion;
  /** What went wrong, in the cause's words (errno code, HTTP status and body excerpt). */
  detail: string;
  status?: number;
}

function bump(errors: Record<string, number>, kind: string): void {
  errors[kind] = (errors[kind] ?? 0) + 1;
}

// ---------------------------------------------------------------------------------------------
// Transport errors

/** Refused, unresolvable or unroutable: nothing is listening, so the circuit opens at once. */
const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'EADDRNOTAVAIL']);

/** The errno-style code in an error's cause chain (undici wraps them: "fetch failed"), else the innermost message. */
function rootCause(err: unknown): { code?: string; message: string } {
  let message = errorText(err);
  for (let e = err as { code?: unknown; cause?: unknown; message?: unknown } | undefined, depth = 0; e && depth < 6; e = e.cause as typeof e, depth++) {
    if (typeof e.code === 'string' && /^[A-Z_]+$/.test(e.code)) return { code: e.code, message: e.code };
    if (typeof e.message === 'string' && e.message) message = e.message;
  }
  return { message };
}

function classifyRequestError(err: unknown, cfg: OpenAIAnnotatorConfig, s: EndpointSettings): SendResult {
  if (err instanceof APIUserAbortError) return { outcome: { kind: 'aborted' }, detail: 'request aborted' };
  // Subclass before superclass: a timeout is also a connection error.
  if (err instanceof APIConnectionTimeoutError) {
    const cause = `no reply within ${cfg.timeout_ms} ms`;
    return { outcome: { kind: 'timeout', cause }, detail: `${cause} from ${s.base_url}` };
  }
  if (err instanceof APIConnectionError) {
    const { code, message: cause } = rootCause(err);
    const detail = `connection to ${s.base_url} failed: ${cause}`;
    // A dropped connection on a live server counts like a timeout; a refused one opens the circuit.
    return { outcome: code && UNREACHABLE.has(code) ? { kind: 'unreachable', cause } : { kind: 'timeout', cause: `connection dropped: ${cause}` }, detail };
  }
  if (err instanceof APIError && typeof err.status === 'number') {
    const status = err.status;
    const detail = `HTTP ${status}: ${excerpt(err.message)}`;
    if (status === 429) return { outcome: { kind: 'rate_limited', retryAfterMs: retryAfterMs(err) }, detail, status };
    if (status >= 500) return { outcome: { kind: 'server_error', cause: `HTTP ${status}` }, detail, status };
    return { outcome: { kind: 'client_error' }, detail, status };
  }
  // A 200 whose body is not JSON: the server's fault, retried like a 5xx.
  if (err instanceof SyntaxError)
    return { outcome: { kind: 'server_error', cause: 'reply body is not JSON' }, detail: `reply body is not JSON (${err.message})` };
  // Not a request failure: a bug. Rethrown by the caller as a unit failure.
  throw err;
}

/** A server's Retry-After is honoured up to this long. */
const RETRY_AFTER_CAP_MS = 60_000;

function retryAfterMs(err: APIError): number | undefined {
  const ms = Number(err.headers?.get('retry-after-ms'));
  if (Number.isFinite(ms) && ms > 0) return Math.min(ms, RETRY_AFTER_CAP_MS);
  const value = err.headers?.get('retry-after');
  if (!value) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.min(Math.max(0, seconds * 1000), RETRY_AFTER_CAP_MS);
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.min(Math.max(0, at - Date.now()), RETRY_AFTER_CAP_MS);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
