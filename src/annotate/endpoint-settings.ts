// The two endpoints of the openai annotator, resolved from the config: each step's own keys, else
// the shared `annotate.openai` values (so a config with only base_url / mllm / llm keeps working).
import { createHash } from 'node:crypto';
import type { OpenAIAnnotatorConfig } from '../config/schema.ts';
import type { SharedLimit } from '../core/shared-limits.ts';

export type Step = 'describe' | 'instruct';
export const STEPS: readonly Step[] = ['describe', 'instruct'];

export interface EndpointSettings {
  step: Step;
  base_url: string;
  model: string;
  api_key_env: string;
  concurrency: number;
  requests_per_s?: number;
  tokens_per_min?: number;
  /** The config key each value came from, for messages (`annotate.openai.describe.base_url` ...). */
  keys: { base_url: string; model: string; api_key_env: string };
}

export function endpointSettings(cfg: OpenAIAnnotatorConfig, step: Step): EndpointSettings {
  const own = cfg[step];
  const at = (k: string, isOwn: boolean) => `annotate.openai.${isOwn ? `${step}.` : ''}${k}`;
  const sharedModel = step === 'describe' ? cfg.mllm : (cfg.llm ?? cfg.mllm);
  const sharedModelKey = step === 'instruct' && cfg.llm ? 'llm' : 'mllm';
  const base_url = own.base_url ?? cfg.base_url;
  // describe.model or mllm is required by the schema; instruct falls back to describe's model.
  const model = own.model ?? sharedModel ?? cfg.describe.model;
  if (!base_url || !model) throw new Error(`annotate.openai: the ${step} endpoint needs base_url and a model`);
  return {
    step,
    base_url,
    model,
    api_key_env: own.api_key_env ?? cfg.api_key_env,
    concurrency: own.concurrency ?? cfg.concurrency,
    requests_per_s: own.requests_per_s ?? cfg.requests_per_s,
    tokens_per_min: own.tokens_per_min ?? cfg.tokens_per_min,
    keys: {
      base_url: at('base_url', own.base_url !== undefined),
      model: own.model !== undefined ? at('model', true) : sharedModel ? `annotate.openai.${sharedModelKey}` : 'annotate.openai.describe.model',
      api_key_env: at('api_key_env', own.api_key_env !== undefined),
    },
  };
}

/** Both steps' endpoints. */
export function endpointsOf(cfg: OpenAIAnnotatorConfig): Record<Step, EndpointSettings> {
  return { describe: endpointSettings(cfg, 'describe'), instruct: endpointSettings(cfg, 'instruct') };
}

/**
 * The endpoint's limits as every process of a run shares them: its identity is its step, server
 * and model, so processes sending to the same model on the same server share one limit.
 */
export function endpointLimit(s: EndpointSettings, leaseMs: number): SharedLimit {
  const id = createHash('sha256').update(`${s.base_url}\u0000${s.model}`).digest('hex').slice(0, 16);
  return { id: `annotate:${s.step}:${id}`, concurrency: s.concurrency, requests_per_s: s.requests_per_s, tokens_per_min: s.tokens_per_min, leaseMs };
}
