// An image as the released MegaPairs data has it: JPEG, size x size (512 by default). `contain`
// (the default) keeps the whole picture and pads with white, so nothing an instruction mentions
// is cropped away or stretched; `cover` centre-crops; `fill` squashes.
import sharp from 'sharp';

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

/** Where an image named "<shard>/<member>" goes in the export: images/<shard>/<member stem>.jpg. */
export function exportedImageKey(image: string): string {
  return `images/${image.replace(/\.[^./]*$/, '')}.jpg`;
}
