// Sample triples for the report's gallery: a few per relation from the first triples parts, each
// with its query, target and hardest negative as thumbnails (read from the corpus through the
// catalog, like every later stage). An image that cannot be read shows its error instead.
import { readParquet } from '../artifacts/parquet.ts';
import { readImageBytes } from '../corpus/image-bytes.ts';
import { lookupImages } from '../stages/catalog-lookup.ts';
import { triplesSchema, type TripleRow } from '../artifacts/tables.ts';
import { pairsSchema, type PairRow } from '../artifacts/tables.ts';
import type { StageContext } from '../core/stage.ts';
import { thumbnailDataUri } from './thumbnail.ts';
import { shared } from '../stages/shared-resources.ts';

export interface GalleryImage {
  name: string;
  caption: string;
  /** A data: URI, or why there is none. */
  src?: string;
  error?: string;
}

export interface GalleryTriple {
  relation: string;
  similarity: number;
  instructions: string[];
  description: string;
  query: GalleryImage;
  target: GalleryImage;
  /** The hardest negative other than the query itself (hns[1]), when the pair has one. */
  negative?: GalleryImage;
}

export interface GalleryOptions {
  perRelation: number;
  /** Thumbnail side in pixels. */
  side: number;
  /** Parts read at most while looking for triples of every relation. */
  maxParts: number;
}

export async function galleryTriples(ctx: StageContext, opts: GalleryOptions): Promise<GalleryTriple[]> {
  const manifest = await shared(ctx).manifest();
  const picked: Array<{ triple: TripleRow; negativeId?: number }> = [];
  const perRelation = new Map<string, number>();
  for (const { number } of manifest.parts.slice(0, opts.maxParts)) {
    if (!(await ctx.output.exists(ctx.layout.triplesPart(number)))) continue;
    const triples = await readParquet<TripleRow>(ctx.output, ctx.layout.triplesPart(number), triplesSchema);
    const pairs = new Map((await readParquet<PairRow>(ctx.work, ctx.layout.pairsPart(number), pairsSchema)).map((p) => [p.pair_id, p]));
    for (const t of triples) {
      const taken = perRelation.get(t.relation) ?? 0;
      if (taken >= opts.perRelation) continue;
      perRelation.set(t.relation, taken + 1);
      picked.push({ triple: t, negativeId: pairs.get(t.pair_id)?.hns[1] });
    }
  }
  const ids = picked.flatMap(({ triple, negativeId }) => [triple.q_id, triple.t_id, ...(negativeId === undefined ? [] : [negativeId])]);
  const rows = await lookupImages(ctx, ids);
  const image = async (id: number): Promise<GalleryImage> => {
    const r = rows.get(id)!;
    try {
      return { name: r.image, caption: r.caption, src: await thumbnailDataUri(await readImageBytes(ctx.input, r), opts.side, ctx.config.input.max_pixels) };
    } catch (err) {
      return { name: r.image, caption: r.caption, error: (err as Error).message };
    }
  };
  const out: GalleryTriple[] = [];
  for (const { triple: t, negativeId } of picked) {
    out.push({
      relation: t.relation,
      similarity: t.similarity,
      instructions: t.q_text,
      description: t.description,
      query: await image(t.q_id),
      target: await image(t.t_id),
      negative: negativeId === undefined ? undefined : await image(negativeId),
    });
  }
  return out;
}
