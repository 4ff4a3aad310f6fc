// The built-in encoders: three small ONNX models the project generates by code, so a laptop run
// needs no downloaded weights. They are honest hand-made descriptors, not learned models:
// - `shape`   (stands in for visual_semantic, "same meaning, different look"): oriented gradient
//   energy of the image's luminance, pooled on 4x4 and 8x8 grids. Blind to hue by construction.
// - `colour`  (stands in for visual_pattern, "same look"): chroma-weighted soft histograms against
//   the 8 corners of the RGB cube, pooled on a coarse 2x2 grid and an 8x8 colour layout, plus
//   colour moments. Blind to outlines and to what the coloured regions' edges look like.
// - `caption` (stands in for the CLIP text tower): a bag of words over a byte-level BPE vocabulary,
//   each token a fixed seeded random vector weighted by its rarity (idf) in the openmoji captions.
// Raw descriptors of this kind are all alike (every histogram is non-negative, every emoji has a
// white background and black outlines), which would put every pair of images above the 0.8 cosine
// that MegaPairs mines from. So each descriptor is square-rooted (Hellinger), centred and only then
// L2-normalised; the constants below were tuned on rendered openmoji images with
// `npx tsx bench/builtin-encoders.ts` so that the (0.8, 0.96) band holds real neighbours: on 600
// images with K=20, 60 % (shape), 64 % (colour) and 37 % (caption) of queries have a neighbour in
// the band, and the shape and colour spaces share 24 % of their neighbours.
import path from 'node:path';
import { LocalStorage } from '../storage/local.ts';
import type { ImagePreprocess } from './image-preprocess.ts';
import { encodeModel } from './onnx-writer.ts';
import { Tokenizer } from './tokenizer.ts';
import { captionModel, captionTokenizerJson, CAPTION, openmojiCaptions, type CaptionOptions } from './builtin/caption.ts';
import { COLOUR, colourModel, type ColourOptions } from './builtin/colour.ts';
import { BUILTIN_MODELS_VERSION, IMAGE_SIZE } from './builtin/graph.ts';
import { SHAPE, shapeModel, type ShapeOptions } from './builtin/shape.ts';

export { openmojiCaption } from './builtin/caption.ts';

export type BuiltinModelName = 'shape' | 'colour' | 'caption';

/** Absolute paths of the generated files. */
export interface BuiltinModels {
  shape: string;
  colour: string;
  caption: string;
  tokenizer: string;
}

/**
 * Preprocessing the built-in image models expect (they override the config's geometry, kernel,
 * mean/std and alpha): transparency flattened onto the background (emoji are drawn on
 * transparency), lanczos3, pixels scaled to [0, 1] and left at that (mean 0, std 1). Both use the
 * same settings, so the embed stage decodes each image once for the two of them.
 */
/** The settings as encoder config keys, for a config that points at a copy of a built-in model file. */
export const BUILTIN_IMAGE_CONFIG = {
  size: IMAGE_SIZE,
  resize: IMAGE_SIZE,
  crop: 'center',
  interpolation: 'lanczos3',
  mean: [0, 0, 0],
  std: [1, 1, 1],
  alpha: 'flatten',
} as const;
const IMAGE_PREPROCESS: ImagePreprocess = {
  ...BUILTIN_IMAGE_CONFIG,
  mean: [...BUILTIN_IMAGE_CONFIG.mean],
  std: [...BUILTIN_IMAGE_CONFIG.std],
  background: [255, 255, 255], // encoders.*.background still chooses it
  icc: 'ignore',
  exifOrientation: 'ignore',
};
export const BUILTIN_IMAGE_PREPROCESS: Record<'shape' | 'colour', ImagePreprocess> = { shape: IMAGE_PREPROCESS, colour: IMAGE_PREPROCESS };

// ---- generation ---------------------------------------------------------------------------------

/** The model bytes (and, for `caption`, the tokenizer it goes with); options are for tuning. */
export async function buildBuiltinModel(
  name: BuiltinModelName,
  options: { shape?: Partial<ShapeOptions>; colour?: Partial<ColourOptions>; caption?: Partial<CaptionOptions> } = {},
): Promise<{ model: Uint8Array; tokenizerJson?: string }> {
  if (name === 'shape') return { model: encodeModel(shapeModel({ ...SHAPE, ...options.shape })) };
  if (name === 'colour') return { model: encodeModel(colourModel({ ...COLOUR, ...options.colour })) };
  const o = { ...CAPTION, ...options.caption };
  const captions = await openmojiCaptions();
  const json = captionTokenizerJson(captions, o);
  // Built from the object that is written out, so no JSON round trip is needed.
  const tokenizer = Tokenizer.fromJSON(json, 'caption tokenizer');
  return { model: encodeModel(captionModel(tokenizer, captions, o)), tokenizerJson: JSON.stringify(json) };
}

/** Writes the built-in models into `dir` if missing (deterministic bytes; write to temp then rename), returns their paths. */
export async function ensureBuiltinModels(dir: string): Promise<BuiltinModels> {
  // LocalStorage writes whole files (temp then rename): a reader never sees half a model.
  const store = new LocalStorage(path.resolve(dir));
  const v = `v${BUILTIN_MODELS_VERSION}`;
  const names = {
    shape: `builtin-${v}-shape.onnx`,
    colour: `builtin-${v}-colour.onnx`,
    caption: `builtin-${v}-caption.onnx`,
    tokenizer: `builtin-${v}-caption-tokenizer.json`,
  };
  for (const name of ['shape', 'colour'] as const) {
    if (!(await store.exists(names[name]))) await store.write(names[name], Buffer.from((await buildBuiltinModel(name)).model));
  }
  if (!(await store.exists(names.caption)) || !(await store.exists(names.tokenizer))) {
    const { model, tokenizerJson } = await buildBuiltinModel('caption');
    await store.write(names.tokenizer, tokenizerJson!);
    await store.write(names.caption, Buffer.from(model));
  }
  return { shape: store.uri(names.shape), colour: store.uri(names.colour), caption: store.uri(names.caption), tokenizer: store.uri(names.tokenizer) };
}
