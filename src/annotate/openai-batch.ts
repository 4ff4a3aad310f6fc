// The openai annotator by batch (annotate.openai.mode: batch): a unit's requests go in Batch API
// files instead of one call each, at the batch price. It sends what the online annotator sends
// (openai-requests.ts: the same draws, bodies and checks), in rounds: first every pair's describe
// request; each round's replies are checked as online, and a pair goes on to its instruct request,
// or asks again with the next attempt's seed, or ends (annotated, or ledgered with the online
// reason). Rounds go until every pair has ended. Each round is one runBatches (batch/driver.ts) per
// endpoint: replies in the request cache are never put in a file, requests of recorded unfinished
// batches (a killed run's) are waited for and never submitted again, and every reply is kept in
// the cache before it is used. So a batch run and an online run of one config share their keys,
// their cache and their annotations.
import type { OpenAIAnnotatorConfig } from '../config/schema.ts';
import { mapPool } from '../util/pool.ts';
import { AnnotationError, newTally, type Annotation, type Annotator, type UnitAnnotations, type UnitIO, type UnitPair } from './annotator.ts';
import { BatchClient } from './batch/client.ts';
import { runBatches, type BatchSettings, type RequestOutcome } from './batch/driver.ts';
import type { BatchJournal } from './batch/journal.ts';
import type { BatchFailure } from './batch/outcome.ts';
import { batchRequest, type BatchRequest, type ChatBody } from './batch/request.ts';
import type { Demonstration } from './demonstrations.ts';
import { endpointsOf, STEPS, type EndpointSettings, type Step } from './endpoint-settings.ts';
import {
  attemptBody,
  type Body,
  checkDescription,
  checkInstructions,
  describeBase,
  drawPair,
  instructBase,
  type PairDraws,
  pairImages,
  refused,
  rejectedOnAll,
} from './openai-requests.ts';
import { PROMPT_VERSION } from './prompts.ts';
import type { CachedCompletion, RequestCache } from './request-cache.ts';

/** Where a pair is: the step and attempt of its next request, its body's base, what it has so far. */
interface PairState {
  pair: UnitPair;
  draws: PairDraws;
  step: Step;
  attempt: number;
  base?: Body;
  description?: string;
  last: { reason: string; text: string };
  tokens: { prompt: number; completion: number };
  result?: Annotation | AnnotationError;
}

export interface OpenAIBatchOptions {
  cache: RequestCache;
  journal: BatchJournal;
  pool: readonly Demonstration[];
  env: NodeJS.ProcessEnv;
  log: (line: string) => void;
}

/** The driver's settings from `annotate.openai.batch`. */
export function batchSettings(cfg: OpenAIAnnotatorConfig, log: (line: string) => void): BatchSettings {
  const b = cfg.batch;
  return {
    pollIntervalMs: b.poll_interval_s * 1000,
    limits: { maxRequests: b.max_requests_per_file, maxBytes: Math.floor(b.max_file_mb * 1024 * 1024) },
    maxAttempts: b.attempts,
    downAfterMs: b.down_after_s * 1000,
    log,
  };
}

export class OpenAIBatchAnnotator implements Annotator {
  readonly name = 'openai';
  readonly model: string;
  private readonly settings: Record<Step, EndpointSettings>;
  /** One client per server and key (#private: it holds the key). */
  readonly #clients = new Map<string, BatchClient>();
  /** Off once the instruct server refuses `response_format`, as online. */
  private structured: boolean;

  constructor(
    private readonly cfg: OpenAIAnnotatorConfig,
    private readonly options: OpenAIBatchOptions,
  ) {
    this.settings = endpointsOf(cfg);
    const [mllm, llm] = [this.settings.describe.model, this.settings.instruct.model];
    this.model = llm === mllm ? mllm : `${mllm}+${llm}`;
    this.structured = cfg.structured_output;
  }

  private groupOf(step: Step): string {
    const s = this.settings[step];
    return `${s.base_url}\n${s.api_key_env}`;
  }

  private client(step: Step): BatchClient {
    const key = this.groupOf(step);
    let client = this.#clients.get(key);
    if (!client) {
      const s = this.settings[step];
      client = new BatchClient({ baseURL: s.base_url, apiKey: this.options.env[s.api_key_env] });
      this.#clients.set(key, client);
    }
    return client;
  }

  async annotateUnit(pairs: readonly UnitPair[], io: UnitIO): Promise<UnitAnnotations> {
    const tally = newTally();
    tally.batches = [];
    const cfg = this.cfg;
    // Draws first, in the pair's order, before anything can fail: as online.
    const states: PairState[] = pairs.map((pair) => ({
      pair,
      draws: drawPair(pair.rng, cfg, this.options.pool),
      step: 'describe',
      attempt: 1,
      last: { reason: 'malformed_describe', text: '' },
      tokens: { prompt: 0, completion: 0 },
    }));
    await mapPool(states, 8, async (st) => {
      try {
        st.base = describeBase(cfg, this.settings.describe.model, await pairImages(st.pair, cfg.image_size), st.draws);
      } catch (err) {
        if (!(err instanceof AnnotationError)) throw err;
        this.end(st, err, io);
      }
    });

    for (let round = 1; ; round++) {
      const open = states.filter((st) => !st.result);
      if (!open.length) break;
      // Whether this round's instruct bodies ask for structured output: a refusal is judged by what was sent.
      const structured = this.structured;
      const bodies = new Map<PairState, BatchRequest>();
      for (const st of open)
        bodies.set(st, batchRequest(attemptBody(cfg, st.step, st.base!, st.attempt, st.step === 'instruct' && structured) as unknown as ChatBody));
      const outcomes = await this.send(round, open, bodies, io.unit, tally);
      const environment: { st: PairState; failure: BatchFailure }[] = [];
      /** Requests two pairs of the round share (a pair two spaces mined): sent once, the second counted as cached, as online. */
      const counted = new Set<string>();
      for (const st of open) {
        const id = bodies.get(st)!.custom_id;
        const outcome = outcomes.get(id)!;
        const counts = (tally.endpoints[st.step] ??= { requests: 0, cached: 0, errors: {} });
        const shared = counted.has(id);
        counted.add(id);
        if ('completion' in outcome) {
          if (outcome.from === 'cache' || shared) counts.cached++;
          else counts.requests += outcome.attempts;
          this.received(st, outcome.completion, tally, io);
          continue;
        }
        if (!shared) counts.requests += outcome.attempts;
        counts.errors[outcome.failure.kind] = (counts.errors[outcome.failure.kind] ?? 0) + 1;
        const f = outcome.failure;
        if (f.owner === 'environment') {
          environment.push({ st, failure: f });
          continue;
        }
        if (st.step === 'instruct' && structured && (f.status === 400 || f.status === 422)) {
          // The server does not do structured output: the same attempt again without it, as online
          // (every pair whose request asked for it, not only the first to find out).
          this.structured = false;
          continue;
        }
        this.end(st, refused(st.pair, st.step, bodies.get(st)!.body.model, outcome.attempts, cfg.batch.attempts, f.detail), io);
      }
      if (environment.length) {
        // As online: the environment's fault fails the unit (retried); every reply is in the cache.
        const { st, failure } = environment[0];
        const s = this.settings[st.step];
        const hint =
          failure.kind === 'endpoint_refused'
            ? failure.status === 404
              ? ` (does ${s.base_url} serve model "${s.model}"? ${s.keys.model})`
              : ` (check the key in the environment variable ${s.api_key_env} (${s.keys.api_key_env}))`
            : '';
        throw new Error(
          `${environment.length} ${st.step} request(s) of unit ${io.unit} to ${s.base_url} failed by batch after ${cfg.batch.attempts} submission(s): ${failure.detail}${hint}`,
        );
      }
    }
    return { results: states.map((st) => st.result!), tally };
  }

  /** A round's requests by batch, one driver per server at once; the outcome of each request by its hash. */
  private async send(round: number, open: PairState[], bodies: Map<PairState, BatchRequest>, unit: string, tally: ReturnType<typeof newTally>) {
    const groups = new Map<string, { step: Step; requests: BatchRequest[] }>();
    for (const st of open) {
      const g = groups.get(this.groupOf(st.step)) ?? { step: st.step, requests: [] };
      g.requests.push(bodies.get(st)!);
      groups.set(this.groupOf(st.step), g);
    }
    const outcomes = new Map<string, RequestOutcome>();
    const log = (line: string) => this.options.log(`${unit} round ${round}: ${line}`);
    await Promise.all(
      [...groups.values()].map(async ({ step, requests }) => {
        const { outcomes: got, report } = await runBatches({
          requests,
          cache: this.options.cache,
          journal: this.options.journal,
          client: this.client(step),
          settings: batchSettings(this.cfg, log),
        });
        for (const o of got) outcomes.set(o.custom_id, o);
        for (const b of report.batches) {
          tally.batches!.push({
            batch_id: b.batch_id,
            file_id: b.file_id,
            step: STEPS.filter((s) => this.settings[s].model === b.model && this.groupOf(s) === this.groupOf(step)).join('+'),
            round,
            model: b.model,
            requests: b.requests,
            ours: b.ours,
            adopted: b.adopted,
            status: b.status,
            transitions: b.transitions.map((t) => ({ status: t.status, at: t.at })),
            request_counts: b.request_counts,
          });
        }
      }),
    );
    return outcomes;
  }

  /** A reply to a pair's request, checked as online: its next step, another attempt, or its end. */
  private received(st: PairState, completion: CachedCompletion, tally: ReturnType<typeof newTally>, io: UnitIO): void {
    const cfg = this.cfg;
    const model = st.base!.model;
    // Tokens of every reply count, since each was paid for.
    st.tokens.prompt += completion.prompt_tokens;
    st.tokens.completion += completion.completion_tokens;
    const t = (tally.tokens[model] ??= { prompt: 0, completion: 0 });
    t.prompt += completion.prompt_tokens;
    t.completion += completion.completion_tokens;
    if (st.step === 'describe') {
      const checked = checkDescription(cfg, st.draws, completion);
      if (checked.ok) {
        st.description = checked.value;
        st.step = 'instruct';
        st.attempt = 1;
        st.last = { reason: 'malformed_instruct', text: '' };
        st.base = instructBase(cfg, this.settings.instruct.model, checked.value, st.draws);
        return;
      }
      st.last = checked;
    } else {
      const checked = checkInstructions(cfg, st.description!, completion);
      if (checked.ok) {
        this.end(
          st,
          {
            description: st.description!,
            instructions: checked.value,
            annotator: this.name,
            model: this.model,
            prompt_version: PROMPT_VERSION,
            prompt_tokens: st.tokens.prompt,
            completion_tokens: st.tokens.completion,
          },
          io,
        );
        return;
      }
      st.last = checked;
    }
    if (st.attempt < cfg.attempts) st.attempt++;
    else this.end(st, rejectedOnAll(st.pair, st.step, model, cfg.attempts, st.last), io);
  }

  private end(st: PairState, result: Annotation | AnnotationError, io: UnitIO): void {
    st.result = result;
    st.base = undefined; // its images are not needed any more
    io.pairDone();
  }
}
