// Preflight of the configured annotator backend: what it checks is its own (annotate/backends.ts),
// e.g. the openai backend's endpoints answer and serve the named models; the template's nothing.
import { annotatorBackend } from '../annotate/backends.ts';
import type { Config } from '../config/schema.ts';
import type { PreflightProblem } from '../core/problem.ts';

export function checkAnnotator(config: Config, env: NodeJS.ProcessEnv = process.env): Promise<PreflightProblem[]> {
  return annotatorBackend(config).preflight(config, env);
}
