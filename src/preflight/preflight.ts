// Preflight: everything a run needs is checked before any unit runs, and every problem is
// reported at once (config key, what was found, what was expected); the CLI exits 2 on any.
// `megapairs run --no-preflight` skips it.
import type { StageContext } from '../core/stage.ts';
import type { PreflightProblem } from '../core/problem.ts';
import { checkAnnotator } from './annotator.ts';
import { checkEncoders } from './encoders.ts';
import { checkModelFiles, checkStorage } from './storage.ts';
import { describeError } from '../util/error-chain.ts';

export type PreflightCheck = (ctx: StageContext) => Promise<PreflightProblem[]>;

/**
 * Each ONNX model loads, its inputs and outputs fit the config and one real batch runs through it;
 * the tokenizer loads. Skipped while a model or tokenizer file is missing: the storage check
 * names that, once.
 */
async function checkModels(ctx: StageContext): Promise<PreflightProblem[]> {
  if ((await checkModelFiles(ctx.config)).length) return [];
  return checkEncoders(ctx.config, ctx.cacheDir);
}

/** What a worker that embeds checks at start: the model files, then the models on this process's execution providers. */
export const checkEmbedding: PreflightCheck = async (ctx) => {
  const files = await checkModelFiles(ctx.config);
  return files.length ? files : checkEncoders(ctx.config, ctx.cacheDir);
};

/** The annotator's endpoints answer and serve the named models. */
const checkEndpoints: PreflightCheck = (ctx) => checkAnnotator(ctx.config);

/** The checks, run side by side: storage and model files, the models themselves, the annotator. */
export const PREFLIGHT_CHECKS: PreflightCheck[] = [checkStorage, checkModels, checkEndpoints];

export class PreflightError extends Error {
  constructor(readonly problems: PreflightProblem[]) {
    super(formatProblems(problems));
    this.name = 'PreflightError';
  }
}

export function formatProblems(problems: PreflightProblem[]): string {
  const lines = problems.map((p) => `  ${p.key}: found ${p.found}; expected ${p.expected}`);
  return `preflight found ${problems.length} problem${problems.length === 1 ? '' : 's'} (nothing was run):\n${lines.join('\n')}`;
}

/** Every problem the checks find; a check that itself throws is reported as a problem, never lost. */
export async function preflightProblems(ctx: StageContext, checks: PreflightCheck[] = PREFLIGHT_CHECKS): Promise<PreflightProblem[]> {
  const found = await Promise.all(
    checks.map((check) =>
      check(ctx).catch((err: Error): PreflightProblem[] => [
        { key: '(preflight)', found: `${check.name || 'a check'} failed: ${describeError(err)}`, expected: 'the check to run' },
      ]),
    ),
  );
  return found.flat();
}

/** Throws PreflightError listing every problem, if there is any. */
export async function preflight(ctx: StageContext, checks?: PreflightCheck[]): Promise<void> {
  const problems = await preflightProblems(ctx, checks);
  if (problems.length) throw new PreflightError(problems);
}
