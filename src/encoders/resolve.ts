// Turns the config's encoder sections into what the embed stage runs: model files on local disk
// and their preprocessing. `builtin:<name>` selects the project's generated descriptors, whose
// preprocessing is fixed by the models themselves. The built-ins are demo code (and need the
// openmoji dev package): they are imported only when a config names one.
import path from 'node:path';
import { IMAGE_ENCODER_NAMES, type Config, type EncoderName } from '../config/schema.ts';
import type { BuiltinModels } from './builtin.ts';
import { parseColour } from './decode-rgb.ts';
import type { ImagePreprocess } from './image-preprocess.ts';
import { DEFAULT_PRESET, PRESETS } from './presets.ts';
import { sessionSettings, type SessionSettings } from './sessions.ts';

export type Pooling = 'none' | 'cls' | 'mean' | 'eot';

export interface ImageEncoderSpec extends ImagePreprocess {
  kind: 'image';
  name: EncoderName;
  model: string;
  inputName?: string;
  outputName?: string;
  pooling: Pooling;
  batchSize: number;
}

export interface TextEncoderSpec {
  kind: 'text';
  name: EncoderName;
  model: string;
  tokenizer: string;
  maxLength: number;
  padToken?: string;
  inputName: string;
  maskName: string | null;
  outputName?: string;
  pooling: Pooling;
  batchSize: number;
}

/** The name in "builtin:<name>", or undefined for a path. */
const builtinName = (ref: string): string | undefined => /^builtin:(.+)$/.exec(ref)?.[1];

export interface ResolvedEncoders {
  images: ImageEncoderSpec[];
  caption: TextEncoderSpec;
  settings: SessionSettings;
}

export async function resolveEncoders(config: Config, cacheDir: string): Promise<ResolvedEncoders> {
  let builtins: BuiltinModels | undefined;
  const builtin = async (name: string, where: string): Promise<string> => {
    builtins ??= await (await import('./builtin.ts')).ensureBuiltinModels(path.join(cacheDir, 'models'));
    // hasOwn, not `in`: "builtin:toString" must not find Object.prototype's.
    if (!Object.hasOwn(builtins, name))
      throw new Error(
        `${where}: unknown built-in "builtin:${name}" (built-ins: ${Object.keys(builtins)
          .map((k) => `builtin:${k}`)
          .join(', ')})`,
      );
    return builtins[name as keyof BuiltinModels];
  };

  const images: ImageEncoderSpec[] = [];
  for (const name of IMAGE_ENCODER_NAMES) {
    const e = config.encoders[name];
    const b = builtinName(e.model);
    const model = b ? await builtin(b, `encoders.${name}.model`) : e.model;
    const pre = b ? (await import('./builtin.ts')).BUILTIN_IMAGE_PREPROCESS[b as 'shape' | 'colour'] : undefined;
    if (b && !pre) throw new Error(`encoders.${name}.model: "${e.model}" is not an image model`);
    // Explicit keys win over the preset, the preset over CLIP's values; the built-ins fix their own.
    const preset = e.preset ? PRESETS[e.preset] : DEFAULT_PRESET;
    const size = e.size ?? preset.size;
    const background = parseColour(e.background, `encoders.${name}.background`);
    images.push({
      kind: 'image',
      name,
      model,
      size,
      resize: e.resize ?? preset.resize(size),
      crop: e.crop ?? preset.crop,
      interpolation: e.interpolation ?? preset.interpolation,
      mean: e.mean ?? preset.mean,
      std: e.std ?? preset.std,
      alpha: e.alpha,
      background,
      icc: e.icc,
      exifOrientation: e.exif_orientation,
      ...(pre && { ...pre, background }),
      inputName: e.input_name,
      outputName: e.output_name,
      pooling: e.pooling,
      batchSize: e.batch_size,
    });
  }
  const c = config.encoders.caption;
  const captionBuiltin = builtinName(c.model);
  const caption: TextEncoderSpec = {
    kind: 'text',
    name: 'caption',
    model: captionBuiltin ? await builtin(captionBuiltin, 'encoders.caption.model') : c.model,
    tokenizer: c.tokenizer === 'builtin:caption' ? await builtin('tokenizer', 'encoders.caption.tokenizer') : c.tokenizer,
    maxLength: c.max_length,
    padToken: c.pad_token,
    inputName: c.input_name,
    maskName: c.attention_mask_name,
    outputName: c.output_name,
    pooling: c.pooling,
    batchSize: c.batch_size,
  };
  return { images, caption, settings: sessionSettings(config) };
}
