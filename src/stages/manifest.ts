// The catalog manifest: after every catalog part exists, fixes each part's row offset, which
// makes global image ids (part offset + row) that the indexes use as labels. One unit.
import { parquetRowCount } from '../artifacts/parquet.ts';
import { CatalogStage } from './catalog.ts';
import type { DoneMarker, Stage, StageContext, UnitResult } from '../core/stage.ts';

export interface CatalogManifest {
  total: number;
  parts: Array<{ number: number; rows: number; offset: number }>;
}

/** Reads the manifest; the stages after it use shared(ctx).manifest(), read once per context and keys. */
export async function readManifest(ctx: Pick<StageContext, 'work' | 'layout'>): Promise<CatalogManifest> {
  return JSON.parse((await ctx.work.read(ctx.layout.catalogManifest())).toString('utf8')) as CatalogManifest;
}

/** The part and row of a global image id. */
export function locate(manifest: CatalogManifest, id: number): { number: number; row: number } {
  let lo = 0;
  let hi = manifest.parts.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (manifest.parts[mid].offset <= id) lo = mid;
    else hi = mid - 1;
  }
  const p = manifest.parts[lo];
  if (!p || id < p.offset || id >= p.offset + p.rows) throw new Error(`image id ${id} is outside the catalog (${manifest.total} images)`);
  return { number: p.number, row: id - p.offset };
}

export class ManifestStage implements Stage<'manifest'> {
  readonly name = 'manifest';
  readonly after = ['catalog'];
  readonly folder = 'manifest';
  readonly chain = 'all';
  decidedBy(): Record<string, unknown> {
    return {};
  }
  async plan(): Promise<'manifest'[]> {
    return ['manifest'];
  }
  unitId(): string {
    return 'manifest';
  }
  doneMarkers(ctx: StageContext): DoneMarker[] {
    return [{ storage: 'work', key: ctx.layout.catalogManifest() }];
  }
  async run(ctx: StageContext): Promise<UnitResult> {
    const manifest: CatalogManifest = { total: 0, parts: [] };
    for (const { number } of await new CatalogStage().plan(ctx)) {
      const rows = await parquetRowCount(ctx.work, ctx.layout.catalogPart(number));
      manifest.parts.push({ number, rows, offset: manifest.total });
      manifest.total += rows;
    }
    await ctx.work.write(ctx.layout.catalogManifest(), JSON.stringify(manifest, null, 1));
    return { items: manifest.total, failed: 0 };
  }
}
