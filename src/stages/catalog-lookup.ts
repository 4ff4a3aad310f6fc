// Looks up catalog rows by global image id, for the stages that turn ids back into images and
// captions (annotate, emit). The ids are grouped by catalog part and each part is read once per
// call (a unit makes one), keeping only the rows asked for: reads are the parts touched, whatever
// the order of the ids.
import { readParquet } from '../artifacts/parquet.ts';
import { catalogSchema, type CatalogRow } from '../artifacts/tables.ts';
import { locate } from './manifest.ts';
import type { StageContext } from '../core/stage.ts';
import { shared } from './shared-resources.ts';

export async function lookupImages(ctx: StageContext, ids: Iterable<number>): Promise<Map<number, CatalogRow>> {
  const manifest = await shared(ctx).manifest();
  const byPart = new Map<number, Array<{ id: number; row: number }>>();
  for (const id of new Set(ids)) {
    const { number, row } = locate(manifest, id);
    const wanted = byPart.get(number) ?? byPart.set(number, []).get(number)!;
    wanted.push({ id, row });
  }
  const out = new Map<number, CatalogRow>();
  for (const [number, wanted] of [...byPart].sort(([a], [b]) => a - b)) {
    const rows = await readParquet<CatalogRow>(ctx.work, ctx.layout.catalogPart(number), catalogSchema);
    for (const { id, row } of wanted) out.set(id, rows[row]);
  }
  return out;
}
