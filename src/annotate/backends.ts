// The annotator backends, one line each: `annotate.annotator` names one of them. The stage,
// preflight, plan, the summary and the shared resources find the configured one here. A new
// backend is its module, its entry here and its name (and section) in config/schema.ts.
import type { Config } from '../config/schema.ts';
import type { AnnotatorBackend } from './backend.ts';
import { openaiBackend } from './openai.ts';
import { templateBackend } from './template.ts';

export const ANNOTATOR_BACKENDS: readonly AnnotatorBackend[] = [templateBackend, openaiBackend];

/** The backend `annotate.annotator` names, among `backends`. */
export function annotatorBackend(config: Config, backends: readonly AnnotatorBackend[] = ANNOTATOR_BACKENDS): AnnotatorBackend {
  const name = config.annotate.annotator;
  const backend = backends.find((b) => b.name === name);
  if (!backend) throw new Error(`annotate.annotator: no annotator backend "${name}" (there are ${backends.map((b) => `"${b.name}"`).join(', ')})`);
  return backend;
}
