// The native preprocessing addon (native/resample.c: PIL's resampler in C; native/addon.c: its
// N-API glue and the float CHW write), built on install by native/build.mjs. Where it is not
// built, or MEGAPAIRS_RESAMPLER=js asks for it, images are resized by the JavaScript resampler in
// resample.ts: the same pixels, about 3x slower.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface PreprocessAddon {
  /** resizeWindow of resample.ts; `filter` indexes FILTER_IDS. */
  resize(
    src: Uint8Array,
    w: number,
    h: number,
    channels: number,
    outW: number,
    outH: number,
    left: number,
    top: number,
    cropW: number,
    cropH: number,
    filter: number,
  ): Uint8Array;
  /** writeChw of image-preprocess.ts: out[offset + c * plane + i] = lut[c * 256 + rgb[i * 3 + c]]. */
  chw(rgb: Uint8Array, lut: Float32Array, out: Float32Array, offset: number): void;
}

export interface Resampler {
  kind: 'native' | 'js';
  /** Why this one, for logs: where the addon was loaded from, or why it was not. */
  detail: string;
  addon?: PreprocessAddon;
}

function load(): Resampler {
  if (process.env.MEGAPAIRS_RESAMPLER === 'js') return { kind: 'js', detail: 'MEGAPAIRS_RESAMPLER=js' };
  // src/encoders/ in the repository, dist/src/encoders/ in the package: the addon is under the root's native/.
  const here = path.dirname(fileURLToPath(import.meta.url));
  const file = [path.join(here, '..', '..'), path.join(here, '..', '..', '..')]
    .map((root) => path.join(root, 'native', 'build', 'Release', 'preprocess.node'))
    .find(existsSync);
  if (!file) return { kind: 'js', detail: 'native/build/Release/preprocess.node is not built (npm run build:native builds it)' };
  try {
    return { kind: 'native', detail: file, addon: createRequire(import.meta.url)(file) as PreprocessAddon };
  } catch (err) {
    return { kind: 'js', detail: `${file} does not load (${(err as Error).message}); npm run build:native rebuilds it` };
  }
}

export const resampler: Resampler = load();

/** One line for logs saying which resampler resizes images. */
export const resamplerLine = () =>
  resampler.kind === 'native'
    ? 'images are resized by the native resampler (PIL-exact)'
    : `images are resized by the JavaScript resampler (PIL-exact, about 3x slower than the native one): ${resampler.detail}`;
