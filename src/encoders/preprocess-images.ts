// Preprocessing one image for several encoders at once: decoded once per distinct decode settings,
// resized once per distinct geometry. Runs in a decode thread (decode-pool.ts) or, with one
// thread, in the caller's.
import { decodeRgb, type RgbImage } from './decode-rgb.ts';
import { decodeKey, geometry, type ImagePreprocess } from './image-preprocess.ts';
import { resizeWindow } from './resample.ts';

export interface PreprocessTask {
  bytes: Uint8Array;
  specs: ImagePreprocess[];
  maxPixels: number;
}

/** One RGB size*size*3 buffer per spec, or the reason the image could not be decoded. */
export type PreprocessResult = { pixels: Uint8Array[] } | { error: string };

export async function preprocessImages(task: PreprocessTask): Promise<PreprocessResult> {
  try {
    const decoded = new Map<string, RgbImage>();
    const pixels = new Map<string, Uint8Array>();
    const out: Uint8Array[] = [];
    for (const p of task.specs) {
      const key = decodeKey(p);
      if (!pixels.has(key)) {
        const d = `${p.alpha}/${p.background.join(',')}/${p.icc}/${p.exifOrientation}`;
        let img = decoded.get(d);
        if (!img) decoded.set(d, (img = await decodeRgb(task.bytes, p, task.maxPixels)));
        pixels.set(key, resizeWindow(img.rgb, img.width, img.height, 3, geometry(img.width, img.height, p), p.interpolation));
      }
      out.push(pixels.get(key)!);
    }
    return { pixels: out };
  } catch (err) {
    return { error: (err as Error).message };
  }
}
