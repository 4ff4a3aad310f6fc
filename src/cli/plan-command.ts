// `megapairs plan --config <file> [--images N] [--sample N] ...`: before any run, what a run of
// the config costs: every artifact's size, device-hours per encoder, index memory per shard, model
// requests, tokens and cost. Rates are measured on a sample of the corpus unless given.
import { parseArgs } from 'node:util';
import { outputLayout } from '../core/layout.ts';
import { ENCODER_NAMES, type EncoderName } from '../config/schema.ts';
import { loadConfig } from '../config/load.ts';
import { formatPlan } from '../plan/format.ts';
import { estimateTokens, measure } from '../plan/measure.ts';
import { planRun, type PlanInputs, type Tokens } from '../plan/plan.ts';
import { createContext } from '../runner/context.ts';
import type { StageContext } from '../core/stage.ts';
import { UsageError } from './usage-error.ts';

export const PLAN_USAGE = `plan --config <file> [--images N] [--sample 64] [--rate <encoder>=<per s>]... [--pairs-per-image X]
       [--image-tokens 256] [--describe-tokens P,C] [--instruct-tokens P,C] [--json]
                                         sizes, device-hours, index memory, requests, tokens and cost of a run,
                                         from the corpus listing (or N images) and rates measured on a sample`;

function positive(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!(n > 0) || !Number.isFinite(n)) throw new UsageError(`--${name} must be a positive number, not "${v}"`);
  return n;
}

function tokensOption(name: string, v: string | undefined): Tokens | undefined {
  if (v === undefined) return undefined;
  const [prompt, completion] = v.split(',').map(Number);
  if (!(prompt >= 0 && completion >= 0)) throw new UsageError(`--${name} must be <prompt>,<completion> tokens per request, not "${v}"`);
  return { prompt, completion };
}

/** Pairs per image from a finished run of this config (its summary.json), when there is one. */
async function previousPairsPerImage(ctx: StageContext): Promise<number | undefined> {
  if (!(await ctx.output.exists(outputLayout.summary()))) return undefined;
  const s = JSON.parse((await ctx.output.read(outputLayout.summary())).toString('utf8')) as {
    images?: { catalogued?: number };
    pairs?: Record<string, number>;
  };
  const images = s.images?.catalogued;
  if (!images || !s.pairs) return undefined;
  return Object.values(s.pairs).reduce((a, b) => a + b, 0) / images;
}

export async function planCommand(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      config: { type: 'string', short: 'c' },
      images: { type: 'string' },
      sample: { type: 'string', default: '64' },
      rate: { type: 'string', multiple: true, default: [] },
      'pairs-per-image': { type: 'string' },
      'image-tokens': { type: 'string', default: '256' },
      'describe-tokens': { type: 'string' },
      'instruct-tokens': { type: 'string' },
      json: { type: 'boolean' },
    },
  });
  if (!values.config) throw new UsageError(`plan needs --config <file>\n  ${PLAN_USAGE}`);
  const images = positive('images', values.images);
  if (images !== undefined && !Number.isInteger(images)) throw new UsageError(`--images must be a whole number, not "${values.images}"`);
  const sample = positive('sample', values.sample)!;
  const given: Partial<Record<EncoderName, number>> = {};
  for (const r of values.rate!) {
    const [name, v] = r.split('=');
    if (!(ENCODER_NAMES as readonly string[]).includes(name)) throw new UsageError(`--rate ${r}: the encoder must be one of ${ENCODER_NAMES.join(', ')}`);
    given[name as EncoderName] = positive(`rate ${name}`, v);
  }
  const config = loadConfig(values.config);
  const ctx = createContext(config);
  const measured = await measure(ctx, Math.round(sample), given);
  const givenPairs = positive('pairs-per-image', values['pairs-per-image']);
  const previous = givenPairs === undefined ? await previousPairsPerImage(ctx) : undefined;
  const describe = tokensOption('describe-tokens', values['describe-tokens']);
  const instruct = tokensOption('instruct-tokens', values['instruct-tokens']);
  const estimated = estimateTokens(config, positive('image-tokens', values['image-tokens'])!);
  const inputs: PlanInputs = {
    images: images ?? measured.corpus.images,
    imagesSource: images !== undefined ? 'given' : measured.corpus.how,
    pairsPerImage:
      givenPairs !== undefined
        ? { value: givenPairs, source: 'given' }
        : previous !== undefined
          ? { value: previous, source: 'previous run' }
          : { value: ENCODER_NAMES.length * config.mine.targets_per_space, source: 'upper bound' },
    tokens: { describe: describe ?? estimated.describe, instruct: instruct ?? estimated.instruct, source: describe && instruct ? 'given' : 'estimated' },
  };
  const plan = planRun(config, measured, inputs);
  process.stdout.write(values.json ? JSON.stringify({ plan, measured }, null, 1) + '\n' : formatPlan(plan));
}
