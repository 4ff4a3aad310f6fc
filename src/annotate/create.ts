// Picks the annotator a run's config asks for.
import type { Config } from '../config/schema.ts';
import type { Annotator } from './annotator.ts';
import { OpenAIAnnotator, type OpenAIAnnotatorOptions } from './openai.ts';
import { TemplateAnnotator } from './template.ts';

/** `env` supplies the API keys of the openai annotator (read from `env[api_key_env]`); `options` its cache and limits. */
export function createAnnotator(cfg: Config['annotate'], env: NodeJS.ProcessEnv = process.env, options: OpenAIAnnotatorOptions = {}): Annotator {
  switch (cfg.annotator) {
    case 'template':
      return new TemplateAnnotator();
    case 'openai':
      // The schema refuses annotator "openai" without its section; this guards hand-built configs.
      if (!cfg.openai) throw new Error('annotate.annotator is "openai" but annotate.openai (base_url, mllm, ...) is missing');
      return new OpenAIAnnotator(cfg.openai, env, options);
  }
}
