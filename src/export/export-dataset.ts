// `megapairs export`: the MegaPairs training layout at a local folder or an S3 prefix:
//   megapairs.jsonl            {q_img, q_text, t_img, hns}, image paths relative to the root
//   images/<shard>/<key>.jpg   every image the triples use, size x size JPEG
// Images first, part by part (bounded memory, resumable), then the JSONL, so a JSONL at the
// destination means its images are there.
import { ensureKeys } from '../provenance/resolve-run.ts';
import { readManifest } from '../stages/manifest.ts';
import type { StageContext } from '../core/stage.ts';
import type { Storage } from '../storage/storage.ts';
import { exportJsonl } from './export-jsonl.ts';
import { exportPartImages } from './export-images.ts';
import { referencedImages } from './referenced-images.ts';
import type { Fit } from './training-image.ts';

export interface ExportOptions {
  size: number;
  fit: Fit;
  quality: number;
  concurrency: number;
  onPart?: (done: number, parts: number, totals: ExportReport['images']) => void;
}

export interface ExportReport {
  images: { referenced: number; written: number; skipped: number; failed: number };
  triples: { written: number; dropped: number };
}

export async function exportDataset(ctx: StageContext, dest: Storage, opts: ExportOptions): Promise<ExportReport> {
  await ensureKeys(ctx); // the product of this config's keys, never an older one's
  const manifest = await readManifest(ctx);
  const wanted = await referencedImages(ctx, manifest);
  const images = { referenced: 0, written: 0, skipped: 0, failed: 0 };
  const failed = new Set<string>();
  let done = 0;
  for (const part of manifest.parts) {
    const r = await exportPartImages(ctx, dest, part, wanted, { ...opts, maxPixels: ctx.config.input.max_pixels });
    images.written += r.written;
    images.skipped += r.skipped;
    images.failed += r.failed.length;
    images.referenced += r.written + r.skipped + r.failed.length;
    for (const name of r.failed) failed.add(name);
    opts.onPart?.(++done, manifest.parts.length, images);
  }
  const triples = await exportJsonl(ctx, dest, failed);
  return { images, triples: { written: triples.lines, dropped: triples.dropped } };
}
