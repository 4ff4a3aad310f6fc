// The triples of one part with their images as training JPEGs, in batches, for the exports that
// embed images in their shards (hf, webdataset). Memory is one batch of images plus a small cache
// (a query recurs once per relation). An image that is missing, cut or undecodable goes to the
// ledger and its triples are left out; any other storage error (an outage past its retries) fails
// the export, which a rerun resumes.
import { partName } from '../core/layout.ts';
import { readParquet } from '../artifacts/parquet.ts';
import { readImageBytes } from '../corpus/image-bytes.ts';
import { UnitLedger } from '../ledger/ledger.ts';
import { lookupImages } from '../stages/catalog-lookup.ts';
import { triplesSchema, type TripleRow } from '../artifacts/tables.ts';
import { pairsSchema, type PairRow } from '../artifacts/tables.ts';
import type { StageContext } from '../core/stage.ts';
import { UnsafeKeyError } from '../storage/safe-key.ts';
import { NotFoundError, ShortReadError } from '../storage/storage.ts';
import { LruCache } from '../util/lru.ts';
import { mapPool } from '../util/pool.ts';
import { EXPORT_STAGE } from './export-images.ts';
import { exportedImageKey, ledgerExportFailure, trainingJpeg, type TrainingImageOptions } from './training-image.ts';

export interface ExportedImage {
  /** The image's name in the run, "<shard>/<member>". */
  name: string;
  /** Its name in the export, "<shard>/<member stem>.jpg". */
  path: string;
  jpeg: Buffer;
}

export interface TripleWithImages {
  triple: TripleRow;
  query: ExportedImage;
  target: ExportedImage;
  /** In hns order: hns[0] is the query itself, as in the released data. */
  hns: ExportedImage[];
}

export interface TripleImageOptions extends TrainingImageOptions {
  concurrency: number;
  /** Triples per batch. */
  batch: number;
}

const CACHED_IMAGES = 256;

class ItemFault extends Error {}

/** Yields the part's triples in batches; `ledger` collects the images that could not be exported. */
export async function* tripleBatches(ctx: StageContext, n: number, opts: TripleImageOptions, ledger: UnitLedger): AsyncGenerator<TripleWithImages[]> {
  // By query: a query's triples (one per relation) come together, so its image is made once.
  const triples = (await readParquet<TripleRow>(ctx.output, ctx.layout.triplesPart(n), triplesSchema)).sort(
    (a, b) => a.q_id - b.q_id || (a.pair_id < b.pair_id ? -1 : 1),
  );
  const hnsIds = new Map((await readParquet<PairRow>(ctx.work, ctx.layout.pairsPart(n), pairsSchema)).map((p) => [p.pair_id, p.hns]));
  const cache = new LruCache<ExportedImage>(CACHED_IMAGES);
  const failed = new Set<number>();
  for (let start = 0; start < triples.length; start += opts.batch) {
    const batch = triples.slice(start, start + opts.batch).map((t) => {
      const hns = hnsIds.get(t.pair_id);
      if (!hns)
        throw new Error(`${ctx.work.uri(ctx.layout.pairsPart(n))}: no pair ${t.pair_id} for the triple in ${ctx.output.uri(ctx.layout.triplesPart(n))}`);
      return { t, ids: [t.q_id, t.t_id, ...hns] };
    });
    const ids = [...new Set(batch.flatMap((b) => b.ids))].filter((id) => !failed.has(id));
    const rows = await lookupImages(ctx, ids);
    const images = new Map<number, ExportedImage>();
    await mapPool(ids, opts.concurrency, async (id) => {
      const r = rows.get(id)!;
      try {
        images.set(
          id,
          await cache.get(String(id), async () => {
            const path = exportedImageKey(r.image).replace(/^images\//, '');
            const bytes = await readImageBytes(ctx.input, r);
            const jpeg = await trainingJpeg(bytes, opts).catch((err: Error) => Promise.reject(new ItemFault(err.message)));
            return { name: r.image, path, jpeg };
          }),
        );
      } catch (err) {
        if (!(err instanceof ItemFault || err instanceof NotFoundError || err instanceof ShortReadError || err instanceof UnsafeKeyError)) throw err;
        failed.add(id);
        ledgerExportFailure(ledger, ctx.input, r, err);
      }
    });
    const out: TripleWithImages[] = [];
    for (const {
      t,
      ids: [q, target, ...hns],
    } of batch) {
      if ([q, target, ...hns].some((id) => !images.has(id))) continue;
      out.push({ triple: t, query: images.get(q)!, target: images.get(target)!, hns: hns.map((id) => images.get(id)!) });
    }
    yield out;
  }
}

/** The ledger of one export format's part, e.g. failures/export_images/<jsonl key>/hf-part-00003.jsonl. */
export const formatLedger = (format: string, n: number) => new UnitLedger(EXPORT_STAGE, `${format}-${partName(n)}`);
