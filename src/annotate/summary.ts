// summary.json's `annotation` section, from the annotate units' stats files on disk: requests
// sent and read from the request cache, errors by kind, per endpoint; tokens per model; and the
// cost when the backend's prices name every model used. Absent for a backend that sends no requests.
import { partName } from '../core/layout.ts';
import type { StageContext } from '../core/stage.ts';
import type { AnnotationTally, UnitBatch } from './annotator.ts';
import { annotatorBackend } from './backends.ts';

export interface AnnotationSummary {
  endpoints: Record<string, { requests: number; cached: number; errors: Record<string, number> }>;
  tokens: Record<string, { prompt: number; completion: number }>;
  cost_usd?: number;
  /** A backend that sent by batch: its batches, by state, and each with its unit, states and times. */
  batches?: { count: number; adopted: number; by_status: Record<string, number>; list: Array<UnitBatch & { unit: string }> };
}

export async function annotationSummary(ctx: StageContext, parts: number[]): Promise<AnnotationSummary | undefined> {
  const backend = annotatorBackend(ctx.config);
  if (!backend.sendsRequests) return undefined;
  const out: AnnotationSummary = { endpoints: {}, tokens: {} };
  for (const n of parts) {
    if (!(await ctx.work.exists(ctx.layout.annotationStats(n)))) continue;
    const tally = JSON.parse((await ctx.work.read(ctx.layout.annotationStats(n))).toString('utf8')) as AnnotationTally;
    for (const [name, e] of Object.entries(tally.endpoints)) {
      const sum = (out.endpoints[name] ??= { requests: 0, cached: 0, errors: {} });
      sum.requests += e.requests;
      sum.cached += e.cached;
      for (const [kind, v] of Object.entries(e.errors)) sum.errors[kind] = (sum.errors[kind] ?? 0) + v;
    }
    for (const b of tally.batches ?? []) {
      const sum = (out.batches ??= { count: 0, adopted: 0, by_status: {}, list: [] });
      sum.count++;
      if (b.adopted) sum.adopted++;
      sum.by_status[b.status] = (sum.by_status[b.status] ?? 0) + 1;
      sum.list.push({ unit: partName(n), ...b });
    }
    for (const [model, t] of Object.entries(tally.tokens)) {
      const sum = (out.tokens[model] ??= { prompt: 0, completion: 0 });
      sum.prompt += t.prompt;
      sum.completion += t.completion;
    }
  }
  const usd = backend.cost(ctx.config, out.tokens);
  if (usd !== undefined) out.cost_usd = Math.round(usd * 1e6) / 1e6;
  return out;
}
