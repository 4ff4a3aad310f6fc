// Turns encoded image bytes into the float tensor an image encoder takes: flatten transparency
// onto a background, resize (centre crop or squash) to size x size, scale to [0, 1], normalise
// per channel with mean and std, lay out as CHW.
import sharp from 'sharp';

export interface ImagePreprocess {
  size: number;
  crop: 'center' | 'squash';
  mean: [number, number, number];
  std: [number, number, number];
  background: string;
}

/** RGB bytes, size*size*3, row-major. Throws on an image sharp cannot decode. */
export async function decodeRgb(bytes: Buffer, p: Pick<ImagePreprocess, 'size' | 'crop' | 'background'>, maxPixels: number): Promise<Buffer> {
  return sharp(bytes, { limitInputPixels: maxPixels, failOn: 'error' })
    .flatten({ background: p.background })
    .toColourspace('srgb')
    .resize(p.size, p.size, { fit: p.crop === 'center' ? 'cover' : 'fill', position: 'centre', kernel: 'lanczos3' })
    .removeAlpha()
    .raw()
    .toBuffer();
}

/** Writes one image into `out` at image slot `slot` of a [N, 3, size, size] tensor. */
export function writeChw(rgb: Buffer, p: Pick<ImagePreprocess, 'size' | 'mean' | 'std'>, out: Float32Array, slot: number): void {
  const plane = p.size * p.size;
  const base = slot * 3 * plane;
  for (let c = 0; c < 3; c++) {
    const scale = 1 / (255 * p.std[c]);
    const shift = p.mean[c] / p.std[c];
    const o = base + c * plane;
    for (let i = 0; i < plane; i++) out[o + i] = rgb[i * 3 + c] * scale - shift;
  }
}

/** A key for "same decode": encoders that share it decode each image once. */
export const decodeKey = (p: Pick<ImagePreprocess, 'size' | 'crop' | 'background'>) => `${p.size}/${p.crop}/${p.background}`;
