// Looks up catalog rows by global image id, for the stages that turn ids back into images and
// captions (annotate, emit). Parts are loaded on demand and kept in a bounded cache.
import { readParquet } from '../artifacts/parquet.ts';
import { LruCache } from '../util/lru.ts';
import { catalogSchema, type CatalogRow } from './catalog.ts';
import { locate, manifestOf } from './manifest.ts';
import { memoize, type StageContext } from './stage.ts';

const PARTS_KEPT = 64;

export async function lookupImages(ctx: StageContext, ids: Iterable<number>): Promise<Map<number, CatalogRow>> {
  const manifest = await manifestOf(ctx);
  const parts = await memoize(ctx, 'catalog-parts', async () => new LruCache<CatalogRow[]>(PARTS_KEPT));
  const out = new Map<number, CatalogRow>();
  for (const id of new Set(ids)) {
    const { number, row } = locate(manifest, id);
    const rows = await parts.get(String(number), () => readParquet<CatalogRow>(ctx.work, ctx.layout.catalogPart(number), catalogSchema));
    out.set(id, rows[row]);
  }
  return out;
}
