// Annotate: one unit per pairs part. The configured annotator writes each pair's relational
// description and instructions; a pair it cannot annotate goes to the ledger with the reason.
// A fault of the environment (an endpoint down past down_after_s, a wrong key) fails the unit
// instead: its pairs are not ledgered, and every reply already received is in the request cache,
// so the retried unit pays only for what is missing.
import { endpointSettings, STEPS } from '../annotate/endpoint-settings.ts';
import { readParquet, writeParquet } from '../artifacts/parquet.ts';
import { annotationsSchema, pairsSchema, type AnnotationRow, type CatalogRow, type PairRow } from '../artifacts/tables.ts';
import { AnnotationError, newTally, type PairImage } from '../annotate/annotator.ts';
import { pairsInFlight } from '../annotate/endpoint-settings.ts';
import { readImageBytes } from '../corpus/image-bytes.ts';
import { UnitLedger } from '../ledger/ledger.ts';
import { mapPool } from '../util/pool.ts';
import { Rng } from '../util/rng.ts';
import { lookupImages } from './catalog-lookup.ts';
import { PartStage } from './part-stage.ts';
import type { DoneMarker, StageContext, UnitResult } from '../core/stage.ts';
import { shared } from './shared-resources.ts';

export class AnnotateStage extends PartStage {
  readonly name = 'annotate';
  readonly after = ['catalog', 'manifest', 'select'];
  readonly folder = 'annotations';
  readonly needs = 'model-endpoint';
  /**
   * The annotator, each step's model and the prompts' settings. Where the endpoints are and how
   * fast they are asked (limits, timeouts, the circuit, prices) decide nothing.
   */
  decidedBy(ctx: StageContext): Record<string, unknown> {
    const { annotator, openai } = ctx.config.annotate;
    if (!openai || annotator !== 'openai') return { 'annotate.annotator': annotator, 'run.seed': ctx.config.run.seed };
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
      ...prompts
    } = openai;
    const models = Object.fromEntries(STEPS.map((step) => [`annotate.openai.${step}.model`, endpointSettings(openai, step).model]));
    return { 'annotate.annotator': annotator, ...models, 'annotate.openai': prompts, 'run.seed': ctx.config.run.seed };
  }

  doneMarkers(ctx: StageContext, n: number): DoneMarker[] {
    return [{ storage: 'work', key: ctx.layout.annotationsPart(n) }];
  }

  async run(ctx: StageContext, n: number): Promise<UnitResult> {
    const ledger = new UnitLedger(this.name, this.unitId(n));
    const pairs = await readParquet<PairRow>(ctx.work, ctx.layout.pairsPart(n), pairsSchema);
    const images = await lookupImages(
      ctx,
      pairs.flatMap((p) => [p.q_id, p.t_id]),
    );
    const annotator = await shared(ctx).annotator();
    const image = (row: CatalogRow): PairImage => ({ key: row.image, caption: row.caption, bytes: () => readImageBytes(ctx.input, row) });
    const tally = newTally();
    const progress = shared(ctx).annotateProgress();

    let environmentFault: Error | undefined;
    progress.unitStarted(pairs.length);
    const results = await mapPool(pairs, pairsInFlightOf(ctx), async (p): Promise<AnnotationRow | undefined> => {
      if (environmentFault) return undefined; // the unit fails: start nothing more
      try {
        const annotation = await annotator.annotate(
          { pairId: p.pair_id, relation: p.relation, similarity: p.similarity, query: image(images.get(p.q_id)!), target: image(images.get(p.t_id)!) },
          // Seeded by the two images, not the pair id: a pair that two spaces both mined sends the
          // same requests, so it is paid for once (the request cache and in-flight sharing).
          Rng.for(ctx.config.run.seed, 'annotate', `${p.q_id}->${p.t_id}`),
          tally,
        );
        progress.pairDone();
        return { pair_id: p.pair_id, ...annotation };
      } catch (err) {
        if (!(err instanceof AnnotationError)) {
          environmentFault ??= err as Error;
          return undefined;
        }
        progress.pairDone();
        ledger.add(p.pair_id, `${images.get(p.q_id)!.image} -> ${images.get(p.t_id)!.image}`, err.reason, err.message);
        return undefined;
      }
    }).finally(() => progress.unitEnded());
    if (environmentFault) throw environmentFault;
    const rows = results.filter((r): r is AnnotationRow => r !== undefined);
    await ledger.save(ctx);
    await ctx.work.write(ctx.layout.annotationStats(n), JSON.stringify(tally));
    await writeParquet(ctx.work, ctx.layout.annotationsPart(n), annotationsSchema, rows);
    return { items: rows.length, failed: pairs.length - rows.length };
  }
}

/** Pairs a unit works on at once: one for the template annotator, enough to fill the endpoints for openai. */
function pairsInFlightOf(ctx: StageContext): number {
  const openai = ctx.config.annotate.openai;
  return ctx.config.annotate.annotator === 'openai' && openai ? pairsInFlight(openai) : 1;
}
