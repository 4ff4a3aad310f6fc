// Annotate: one unit per pairs part. The configured annotator writes each pair's relational
// description and instructions; a pair it cannot annotate goes to the ledger with the reason.
import { layout } from '../artifacts/layout.ts';
import { readParquet, writeParquet } from '../artifacts/parquet.ts';
import { annotationsSchema, pairsSchema, type AnnotationRow, type CatalogRow, type PairRow } from '../artifacts/tables.ts';
import { AnnotationError, type PairImage } from '../annotate/annotator.ts';
import { createAnnotator } from '../annotate/create.ts';
import { readImageBytes } from '../corpus/image-bytes.ts';
import { UnitLedger } from '../ledger/ledger.ts';
import { mapPool } from '../util/pool.ts';
import { Rng } from '../util/rng.ts';
import { lookupImages } from './catalog-lookup.ts';
import { PartStage } from './part-stage.ts';
import { memoize, type StageContext, type UnitResult } from './stage.ts';

export class AnnotateStage extends PartStage {
  readonly name = 'annotate';

  isDone(ctx: StageContext, n: number): Promise<boolean> {
    return ctx.work.exists(layout.annotationsPart(n));
  }

  async run(ctx: StageContext, n: number): Promise<UnitResult> {
    const ledger = new UnitLedger(this.name, this.unitId(n));
    const pairs = await readParquet<PairRow>(ctx.work, layout.pairsPart(n), pairsSchema);
    const images = await lookupImages(ctx, pairs.flatMap((p) => [p.q_id, p.t_id]));
    // One annotator per context: its HTTP client and connections serve every unit.
    const annotator = await memoize(ctx, 'annotator', async () => createAnnotator(ctx.config.annotate));
    const image = (row: CatalogRow): PairImage => ({ key: row.image, caption: row.caption, bytes: () => readImageBytes(ctx.input, row) });
    const concurrency = ctx.config.annotate.annotator === 'openai' ? ctx.config.annotate.openai!.concurrency : 1;

    const results = await mapPool(pairs, concurrency, async (p): Promise<AnnotationRow | undefined> => {
      try {
        const annotation = await annotator.annotate(
          { pairId: p.pair_id, relation: p.relation, similarity: p.similarity, query: image(images.get(p.q_id)!), target: image(images.get(p.t_id)!) },
          Rng.for(ctx.config.run.seed, 'annotate', p.pair_id),
        );
        return { pair_id: p.pair_id, ...annotation };
      } catch (err) {
        const reason = err instanceof AnnotationError ? err.reason : 'annotator_error';
        ledger.add(p.pair_id, `${images.get(p.q_id)!.image} -> ${images.get(p.t_id)!.image}`, reason, (err as Error).message);
        return undefined;
      }
    });
    const rows = results.filter((r): r is AnnotationRow => r !== undefined);
    await ledger.save(ctx.work);
    await writeParquet(ctx.work, layout.annotationsPart(n), annotationsSchema, rows);
    return { items: rows.length, failed: pairs.length - rows.length };
  }
}
