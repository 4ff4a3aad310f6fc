// Which catalog images the exported triples use (query, target, hard negatives), as one bit per
// global image id: memory is the corpus size / 8 (2.5 MB for 20M images), whatever the number of
// triples. The ids come from each triples part's pairs (hard negatives are ids there, names in the
// triples), one part at a time.
import { readParquet } from '../artifacts/parquet.ts';
import { pairsSchema, type PairRow } from '../artifacts/tables.ts';
import type { CatalogManifest } from '../stages/manifest.ts';
import type { StageContext } from '../core/stage.ts';

export class IdBitmap {
  private readonly bits: Uint8Array;
  constructor(readonly size: number) {
    this.bits = new Uint8Array(Math.ceil(size / 8));
  }
  add(id: number): void {
    if (id < 0 || id >= this.size) throw new Error(`image id ${id} is outside the catalog (${this.size} images)`);
    this.bits[id >> 3] |= 1 << (id & 7);
  }
  has(id: number): boolean {
    return id >= 0 && id < this.size && (this.bits[id >> 3] & (1 << (id & 7))) !== 0;
  }
}

export async function referencedImages(ctx: StageContext, manifest: CatalogManifest): Promise<IdBitmap> {
  const ids = new IdBitmap(manifest.total);
  for (const { number } of manifest.parts) {
    const emitted = new Set((await readParquet<{ pair_id: string }>(ctx.output, ctx.layout.triplesPart(number))).map((t) => t.pair_id));
    for (const p of await readParquet<PairRow>(ctx.work, ctx.layout.pairsPart(number), pairsSchema)) {
      if (!emitted.has(p.pair_id)) continue;
      ids.add(p.q_id);
      ids.add(p.t_id);
      for (const h of p.hns) ids.add(h);
    }
  }
  return ids;
}
