// An annotator backend: everything the pipeline asks of a way of annotating, in one object. The
// annotate stage keys its artifacts by `decidedBy` and runs units through the Annotator `open`
// gives; preflight asks `preflight`; `megapairs plan` asks `estimate`; summary.json's cost asks
// `cost`. backends.ts lists the backends; nothing outside a backend's own module names it.
import type { Config } from '../config/schema.ts';
import type { SharedLimits } from '../core/shared-limits.ts';
import type { PreflightProblem } from '../core/problem.ts';
import type { Storage } from '../storage/storage.ts';
import type { Annotator } from './annotator.ts';

export interface Tokens {
  prompt: number;
  completion: number;
}

/** What a process's annotator is opened with. */
export interface AnnotatorResources {
  /** The run's work storage: a backend that pays for requests keeps every reply there (request-cache.ts). */
  work: Storage;
  /** Limits shared with the run's other processes, when the runner keeps them (StageContext.sharedLimits). */
  sharedLimits?: SharedLimits;
  /** Where API keys are read from (by the name of their variable, never from the config). */
  env: NodeJS.ProcessEnv;
}

/** What annotating a run's pairs would send, for `megapairs plan`. */
export interface AnnotationEstimate {
  /** Requests by kind (the openai backend: describe, instruct). */
  requests: Record<string, number>;
  /** Tokens by model. */
  tokens: Record<string, Tokens>;
  /** USD, when the backend's prices name every model. */
  costUsd?: number;
  /** Models without a price, and the config key that sets them. */
  unpriced: { models: string[]; key: string };
  /**
   * Ways the backend can send (the openai backend: online, batch), each with its cost and expected
   * wall time; `chosen` is the configured one, whose cost is `costUsd`.
   */
  modes?: Record<string, AnnotationMode>;
}

/** One way of sending a run's requests, for `megapairs plan`. */
export interface AnnotationMode {
  chosen: boolean;
  costUsd?: number;
  /** Expected wall time of the run's requests. */
  hours: number;
  /** How the time is reckoned, in words (the settings and assumptions it rests on). */
  basis: string;
}

export interface AnnotatorBackend {
  /**
   * Its name in `annotate.annotator`; its config section, when it has one, is `annotate.<name>`.
   * An API key is read from the variable a key `api_key_env` of that section names: so redact()
   * knows it (secrets/redact.ts), and the key itself is never in a config.
   */
  readonly name: string;
  /**
   * What decides its annotations beyond its name and `run.seed`, by config path: models, prompts
   * and their settings. Never where or how fast it is asked (endpoints, limits, timeouts, prices,
   * modes such as online or batch): those change no annotation, so they must not recompute one.
   */
  decidedBy(config: Config): Record<string, unknown>;
  /** What keeps a run from annotating, found before any unit runs (endpoints that do not answer, models not served). */
  preflight(config: Config, env: NodeJS.ProcessEnv): Promise<PreflightProblem[]>;
  /**
   * The requests, tokens and cost of annotating `pairs` pairs, given the tokens of one request of
   * each kind (measured, given or estimated by `megapairs plan`); undefined: it sends no requests.
   */
  estimate(config: Config, work: { pairs: number; tokensPerRequest: Record<string, Tokens> }): AnnotationEstimate | undefined;
  /** USD for the tokens the run's units used, by model; undefined when unpriced or free. */
  cost(config: Config, tokens: Record<string, Tokens>): number | undefined;
  /** Whether it sends model requests: summary.json then reports its units' tallies (requests, cache hits, errors, tokens). */
  readonly sendsRequests: boolean;
  /** The process's annotator: opened once per process and set of keys, it serves every unit. */
  open(config: Config, resources: AnnotatorResources): Promise<Annotator>;
}
