// Annotate: one unit per pairs part. The configured annotator backend (annotate/backends.ts)
// writes each pair's relational description and instructions; a pair it cannot annotate goes to
// the ledger with the reason. A fault of the environment (an endpoint down past down_after_s, a
// wrong key) fails the unit instead: its pairs are not ledgered, and every reply already received
// is in the request cache, so the retried unit pays only for what is missing.
import { readParquet, writeParquet } from '../artifacts/parquet.ts';
import { annotationsSchema, pairsSchema, type AnnotationRow, type CatalogRow, type PairRow } from '../artifacts/tables.ts';
import { AnnotationError, type PairImage, type UnitPair } from '../annotate/annotator.ts';
import type { AnnotatorBackend } from '../annotate/backend.ts';
import { ANNOTATOR_BACKENDS, annotatorBackend } from '../annotate/backends.ts';
import { readImageBytes } from '../corpus/image-bytes.ts';
import { UnitLedger } from '../ledger/ledger.ts';
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

  /** `backends`: those `annotate.annotator` may name (a test adds its own). */
  constructor(private readonly backends: readonly AnnotatorBackend[] = ANNOTATOR_BACKENDS) {
    super();
  }

  /** The backend, what decides its annotations (backend.decidedBy), and the seed its pairs' draws come from. */
  decidedBy(ctx: StageContext): Record<string, unknown> {
    const backend = annotatorBackend(ctx.config, this.backends);
    return { 'annotate.annotator': backend.name, ...backend.decidedBy(ctx.config), 'run.seed': ctx.config.run.seed };
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
    const annotator = await shared(ctx).annotator(annotatorBackend(ctx.config, this.backends));
    const image = (row: CatalogRow): PairImage => ({ key: row.image, caption: row.caption, bytes: () => readImageBytes(ctx.input, row) });
    const unitPairs = pairs.map(
      (p): UnitPair => ({
        pairId: p.pair_id,
        relation: p.relation,
        similarity: p.similarity,
        query: image(images.get(p.q_id)!),
        target: image(images.get(p.t_id)!),
        // Seeded by the two images, not the pair id: a pair that two spaces both mined sends the
        // same requests, so it is paid for once (the request cache and in-flight sharing).
        rng: Rng.for(ctx.config.run.seed, 'annotate', `${p.q_id}->${p.t_id}`),
      }),
    );
    const progress = shared(ctx).annotateProgress();
    progress.unitStarted(pairs.length);
    // An environment fault throws here: the unit fails, and nothing is ledgered or written.
    const { results, tally } = await annotator
      .annotateUnit(unitPairs, { unit: this.unitId(n), pairDone: () => progress.pairDone() })
      .finally(() => progress.unitEnded());
    if (results.length !== pairs.length) throw new Error(`annotator "${annotator.name}" returned ${results.length} results for ${pairs.length} pairs`);
    const rows: AnnotationRow[] = [];
    results.forEach((r, i) => {
      const p = pairs[i];
      if (r instanceof AnnotationError) ledger.add(p.pair_id, `${images.get(p.q_id)!.image} -> ${images.get(p.t_id)!.image}`, r.reason, r.message);
      else rows.push({ pair_id: p.pair_id, ...r });
    });
    await ledger.save(ctx);
    await ctx.work.write(ctx.layout.annotationStats(n), JSON.stringify(tally));
    await writeParquet(ctx.work, ctx.layout.annotationsPart(n), annotationsSchema, rows);
    return { items: rows.length, failed: pairs.length - rows.length };
  }
}
