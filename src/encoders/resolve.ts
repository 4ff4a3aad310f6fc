// Turns the config's encoder sections into what the embed stage runs: model files on local disk
// and their preprocessing. `builtin:<name>` selects the project's generated descriptors, whose
// preprocessing is fixed by the models themselves.
import path from 'node:path';
import type { Config, EncoderName } from '../config/schema.ts';
import { BUILTIN_IMAGE_PREPROCESS, ensureBuiltinModels, type BuiltinModels } from './builtin.ts';
import type { ImagePreprocess } from './image-preprocess.ts';

export interface ImageEncoderSpec extends ImagePreprocess {
  kind: 'image';
  name: EncoderName;
  model: string;
  inputName?: string;
  outputName?: string;
  batchSize: number;
}

export interface TextEncoderSpec {
  kind: 'text';
  name: EncoderName;
  model: string;
  tokenizer: string;
  maxLength: number;
  inputName: string;
  maskName: string | null;
  outputName?: string;
  batchSize: number;
}

export type EncoderSpec = ImageEncoderSpec | TextEncoderSpec;

const BUILTIN = /^builtin:(.+)$/;

export async function resolveEncoders(config: Config, cacheDir: string): Promise<{ images: ImageEncoderSpec[]; caption: TextEncoderSpec }> {
  let builtins: BuiltinModels | undefined;
  const builtin = async (ref: string, where: string): Promise<string> => {
    const name = BUILTIN.exec(ref)?.[1] as keyof BuiltinModels;
    builtins ??= await ensureBuiltinModels(path.join(cacheDir, 'models'));
    if (!(name in builtins)) throw new Error(`${where}: unknown built-in "${ref}" (built-ins: ${Object.keys(builtins).map((k) => `builtin:${k}`).join(', ')})`);
    return builtins[name];
  };

  const images: ImageEncoderSpec[] = [];
  for (const name of ['visual_semantic', 'visual_pattern'] as const) {
    const e = config.encoders[name];
    const isBuiltin = BUILTIN.test(e.model);
    const model = isBuiltin ? await builtin(e.model, `encoders.${name}.model`) : e.model;
    const pre = isBuiltin ? BUILTIN_IMAGE_PREPROCESS[BUILTIN.exec(e.model)![1] as keyof typeof BUILTIN_IMAGE_PREPROCESS] : undefined;
    if (isBuiltin && !pre) throw new Error(`encoders.${name}.model: "${e.model}" is not an image model`);
    images.push({
      kind: 'image',
      name,
      model,
      size: pre?.size ?? e.size,
      crop: pre?.crop ?? e.crop,
      mean: pre?.mean ?? e.mean,
      std: pre?.std ?? e.std,
      background: e.background,
      inputName: e.input_name,
      outputName: e.output_name,
      batchSize: e.batch_size,
    });
  }
  const c = config.encoders.caption;
  const caption: TextEncoderSpec = {
    kind: 'text',
    name: 'caption',
    model: BUILTIN.test(c.model) ? await builtin(c.model, 'encoders.caption.model') : c.model,
    tokenizer: c.tokenizer === 'builtin:caption' ? await builtin('builtin:tokenizer', 'encoders.caption.tokenizer') : c.tokenizer,
    maxLength: c.max_length,
    inputName: c.input_name,
    maskName: c.attention_mask_name,
    outputName: c.output_name,
    batchSize: c.batch_size,
  };
  return { images, caption };
}
