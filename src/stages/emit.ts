// Emit: one unit per part. Joins each annotated pair with its images and writes the product: a
// triples Parquet part and its MegaPairs-format JSONL lines ({q_img, q_text, t_img, hns}).
import { readParquet, writeParquet } from '../artifacts/parquet.ts';
import { annotationsSchema, pairsSchema, triplesSchema, type AnnotationRow, type PairRow, type TripleRow } from '../artifacts/tables.ts';
import { lookupImages } from './catalog-lookup.ts';
import { PartStage } from './part-stage.ts';
import type { DoneMarker, StageContext, UnitResult } from '../core/stage.ts';

export class EmitStage extends PartStage {
  readonly name = 'emit';
  readonly after = ['catalog', 'manifest', 'select', 'annotate'];
  readonly chain = 'unit';
  decidedBy(): Record<string, unknown> {
    return {};
  }

  doneMarkers(ctx: StageContext, n: number): DoneMarker[] {
    // The output keeps plain names, so its marker says which emit key the part there is from.
    return [
      { storage: 'output', key: ctx.layout.emittedMarker(n), holds: ctx.layout.keys.emit },
      { storage: 'output', key: ctx.layout.triplesPart(n) },
    ];
  }

  async run(ctx: StageContext, n: number): Promise<UnitResult> {
    const pairs = await readParquet<PairRow>(ctx.work, ctx.layout.pairsPart(n), pairsSchema);
    const annotations = new Map((await readParquet<AnnotationRow>(ctx.work, ctx.layout.annotationsPart(n), annotationsSchema)).map((a) => [a.pair_id, a]));
    const annotated = pairs.filter((p) => annotations.has(p.pair_id));
    const images = await lookupImages(
      ctx,
      annotated.flatMap((p) => [p.q_id, p.t_id, ...p.hns]),
    );
    const triples: TripleRow[] = annotated.map((p) => {
      const a = annotations.get(p.pair_id)!;
      const q = images.get(p.q_id)!;
      const t = images.get(p.t_id)!;
      return {
        q_img: q.image,
        q_text: a.instructions,
        t_img: t.image,
        hns: p.hns.map((id) => images.get(id)!.image),
        relation: p.relation,
        similarity: p.similarity,
        description: a.description,
        annotator: a.annotator,
        model: a.model,
        prompt_version: a.prompt_version,
        pair_id: p.pair_id,
        q_id: p.q_id,
        t_id: p.t_id,
        q_caption: q.caption,
        t_caption: t.caption,
      };
    });
    const jsonl = triples.map((t) => JSON.stringify({ q_img: t.q_img, q_text: t.q_text, t_img: t.t_img, hns: t.hns }) + '\n').join('');
    await ctx.output.write(ctx.layout.triplesJsonlPart(n), jsonl);
    await writeParquet(ctx.output, ctx.layout.triplesPart(n), triplesSchema, triples);
    await ctx.output.write(ctx.layout.emittedMarker(n), ctx.layout.keys.emit);
    return { items: triples.length, failed: 0 };
  }
}
