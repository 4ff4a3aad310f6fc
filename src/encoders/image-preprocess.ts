// Turns encoded image bytes into the float tensor an image encoder takes, as torchvision's
// Resize(resize) + CenterCrop(size) + ToTensor + Normalize(mean, std) do on a PIL image: decode
// (decode-rgb.ts), resize the shortest side to `resize` with PIL's kernels (resample.ts), crop the
// centre `size` x `size` (or squash straight to size x size), scale to [0, 1], normalise, lay out CHW.
import { decodeRgb, type DecodeOptions } from './decode-rgb.ts';
import { resampler } from './native-addon.ts';
import { resizeWindow, type Interpolation } from './resample.ts';

export interface ImagePreprocess extends DecodeOptions {
  /** Side of the square the model takes. */
  size: number;
  /** The shortest side is resized to this before the centre crop (`crop: center`). */
  resize: number;
  crop: 'center' | 'squash';
  interpolation: Interpolation;
  mean: [number, number, number];
  std: [number, number, number];
}

/** Python's round(): halves go to the even neighbour (torchvision's crop offset uses it). */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** torchvision's _compute_resized_output_size (int size): shortest side to `resize`, long side truncated. */
export function resizedSize(w: number, h: number, resize: number): { width: number; height: number } {
  const [short, long] = w <= h ? [w, h] : [h, w];
  const newLong = Math.trunc((resize * long) / short);
  return w <= h ? { width: resize, height: newLong } : { width: newLong, height: resize };
}

/** torchvision's center_crop offset along one side; negative when the image is padded. */
function cropOffset(side: number, size: number): number {
  return side >= size ? roundHalfEven((side - size) / 2) : -Math.floor((size - side) / 2);
}

/** The resize and crop geometry for a w x h image. */
export function geometry(w: number, h: number, p: Pick<ImagePreprocess, 'size' | 'resize' | 'crop'>) {
  if (p.crop === 'squash') return { width: p.size, height: p.size, left: 0, top: 0, cropW: p.size, cropH: p.size };
  const { width, height } = resizedSize(w, h, p.resize);
  return { width, height, left: cropOffset(width, p.size), top: cropOffset(height, p.size), cropW: p.size, cropH: p.size };
}

/** RGB bytes, size*size*3, row-major. Throws on an image sharp cannot decode. */
export async function preprocessRgb(bytes: Uint8Array, p: ImagePreprocess, maxPixels: number): Promise<Uint8Array> {
  const img = await decodeRgb(bytes, p, maxPixels);
  return resizeWindow(img.rgb, img.width, img.height, 3, geometry(img.width, img.height, p), p.interpolation);
}

/** (x / 255 - mean) / std in float32, the order ToTensor + Normalize compute it in, for the 256 levels of each channel. */
function normaliseTable(p: Pick<ImagePreprocess, 'mean' | 'std'>): Float32Array {
  const lut = new Float32Array(768);
  for (let c = 0; c < 3; c++) {
    const mean = Math.fround(p.mean[c]);
    const std = Math.fround(p.std[c]);
    for (let v = 0; v < 256; v++) lut[c * 256 + v] = Math.fround(Math.fround(Math.fround(v / 255) - mean) / std);
  }
  return lut;
}

/** Writes one image into `out` at image slot `slot` of a [N, 3, size, size] tensor; native where the addon is built. */
export function writeChw(rgb: Uint8Array, p: Pick<ImagePreprocess, 'size' | 'mean' | 'std'>, out: Float32Array, slot: number): void {
  if (!resampler.addon) return writeChwJs(rgb, p, out, slot);
  const plane = p.size * p.size;
  resampler.addon.chw(rgb.subarray(0, 3 * plane), normaliseTable(p), out, slot * 3 * plane);
}

/** writeChw in JavaScript, the fallback. */
export function writeChwJs(rgb: Uint8Array, p: Pick<ImagePreprocess, 'size' | 'mean' | 'std'>, out: Float32Array, slot: number): void {
  const plane = p.size * p.size;
  const lut = normaliseTable(p);
  for (let c = 0; c < 3; c++) {
    const o = slot * 3 * plane + c * plane;
    for (let i = 0, j = c; i < plane; i++, j += 3) out[o + i] = lut[c * 256 + rgb[j]];
  }
}

/** A key for "same pixels": encoders that share it decode and resize each image once. */
export const decodeKey = (p: ImagePreprocess) =>
  [p.size, p.resize, p.crop, p.interpolation, p.alpha, p.background.join(','), p.icc, p.exifOrientation].join('/');
