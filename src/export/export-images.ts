// Writes the referenced images of one catalog part to the export destination. What is already
// there is listed once per part and skipped (writes are whole, so a listed image is complete), which
// makes an interrupted export resumable. Each image is one ranged read of its tar member via the
// catalog, then resized to JPEG; at most `concurrency` are in memory at once.
import { partName } from '../core/layout.ts';
import { readParquet } from '../artifacts/parquet.ts';
import { readImageBytes } from '../corpus/image-bytes.ts';
import { UnitLedger } from '../ledger/ledger.ts';
import { catalogSchema, type CatalogRow } from '../artifacts/tables.ts';
import type { StageContext } from '../core/stage.ts';
import type { Storage } from '../storage/storage.ts';
import { mapPool } from '../util/pool.ts';
import type { IdBitmap } from './referenced-images.ts';
import { exportedImageKey, ledgerExportFailure, trainingJpeg, type TrainingImageOptions } from './training-image.ts';

export interface PartExport {
  written: number;
  skipped: number;
  /** Image names that could not be exported (each also in the ledger). */
  failed: string[];
}

/** The stage name export failures carry in the ledger (failures/export_images/<jsonl key>/part-NNNNN.jsonl). */
export const EXPORT_STAGE = 'export_images';

export async function exportPartImages(
  ctx: StageContext,
  dest: Storage,
  part: { number: number; offset: number; rows: number },
  wanted: IdBitmap,
  opts: TrainingImageOptions & { concurrency: number },
): Promise<PartExport> {
  const result: PartExport = { written: 0, skipped: 0, failed: [] };
  const wantedRows: number[] = [];
  for (let row = 0; row < part.rows; row++) if (wanted.has(part.offset + row)) wantedRows.push(row);
  if (!wantedRows.length) return result;
  const rows = await readParquet<CatalogRow>(ctx.work, ctx.layout.catalogPart(part.number), catalogSchema);
  const todo = wantedRows.map((row) => rows[row]);
  // Every image of a part lies under its shard's folder: one listing tells what is already exported.
  const present = new Set<string>();
  const shardFolder = `images/${todo[0].image.split('/')[0]}/`;
  for await (const key of dest.list(shardFolder)) present.add(key);

  const ledger = new UnitLedger(EXPORT_STAGE, partName(part.number));
  await mapPool(todo, opts.concurrency, async (r) => {
    try {
      const key = exportedImageKey(r.image);
      if (present.has(key)) {
        result.skipped++;
        return;
      }
      const jpeg = await trainingJpeg(await readImageBytes(ctx.input, r), opts);
      await dest.write(key, jpeg);
      result.written++;
    } catch (err) {
      result.failed.push(r.image);
      ledgerExportFailure(ledger, ctx.input, r, err);
    }
  });
  await ledger.save(ctx);
  return result;
}
