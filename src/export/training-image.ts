// An image as the released MegaPairs data has it: JPEG, size x size (512 by default). `contain`
// (the default) keeps the whole picture and pads with white, so nothing an instruction mentions
// is cropped away or stretched; `cover` centre-crops; `fill` squashes.
import sharp from 'sharp';
import type { CatalogRow } from '../artifacts/tables.ts';
import type { UnitLedger } from '../ledger/ledger.ts';
import { checkedKey, printableKey, UnsafeKeyError } from '../storage/safe-key.ts';
import type { Storage } from '../storage/storage.ts';

export type Fit = 'contain' | 'cover' | 'fill';

export interface TrainingImageOptions {
  size: number;
  fit: Fit;
  quality: number;
  /** Refuse images over this many pixels (decompression bombs), as the catalog does. */
  maxPixels: number;
}

export function trainingJpeg(bytes: Buffer, opts: TrainingImageOptions): Promise<Buffer> {
  return sharp(bytes, { limitInputPixels: opts.maxPixels })
    .rotate() // EXIF orientation, so the pixels face the way the annotator saw them
    .flatten({ background: '#ffffff' })
    .resize(opts.size, opts.size, { fit: opts.fit, position: 'centre', background: '#ffffff', kernel: 'lanczos3' })
    .jpeg({ quality: opts.quality })
    .toBuffer();
}

/**
 * Where an image named "<shard>/<member>" goes in the export: images/<shard>/<member stem>.jpg.
 * A name that could leave the destination (a catalog from before member names were checked)
 * throws UnsafeKeyError.
 */
export function exportedImageKey(image: string): string {
  return checkedKey('the export destination', `images/${image.replace(/\.[^./]*$/, '')}.jpg`);
}

/** Ledgers an image the export could not write: unsafe_member_name for a name that could leave the destination, else export_failed. */
export function ledgerExportFailure(ledger: UnitLedger, input: Storage, r: CatalogRow, err: unknown): void {
  const where = `${input.uri(r.tar)}:${printableKey(r.image.replace(/^[^/]*\//, ''))}@${r.offset}`;
  ledger.add(printableKey(r.key), where, err instanceof UnsafeKeyError ? 'unsafe_member_name' : 'export_failed', (err as Error).message);
}
