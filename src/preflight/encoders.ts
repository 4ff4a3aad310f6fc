// Preflight for the encoders: each model loads with the configured execution providers, its
// inputs and outputs fit the config (names, element types, shapes, pooling), one real batch goes
// through it, and the caption tokenizer loads. Every problem names the config key. It also says
// (on stderr) whether images are resized by the native resampler or the slower JavaScript one.
import sharp from 'sharp';
import type { Config } from '../config/schema.ts';
import { writeChw, preprocessRgb } from '../encoders/image-preprocess.ts';
import { checkModelIO } from '../encoders/model-io.ts';
import { resamplerLine } from '../encoders/native-addon.ts';
import { loadTokenizer, OnnxEncoder } from '../encoders/onnx-encoder.ts';
import { resolveEncoders, type ImageEncoderSpec, type ResolvedEncoders, type TextEncoderSpec } from '../encoders/resolve.ts';
import { loadSession, providersSource } from '../encoders/sessions.ts';
import type { PreflightProblem } from '../core/problem.ts';

/** A small non-square photo-like test image, so the batch exercises resize and crop. */
async function testImage(): Promise<Buffer> {
  const w = 96;
  const h = 64;
  const px = Buffer.alloc(w * h * 3);
  for (let i = 0; i < w * h; i++) px.set([(i * 7) % 256, (i >> 3) % 256, (i * 13) % 256], i * 3);
  return sharp(px, { raw: { width: w, height: h, channels: 3 } })
    .jpeg()
    .toBuffer();
}

export async function checkEncoders(config: Config, cacheDir: string): Promise<PreflightProblem[]> {
  process.stderr.write(`preflight: ${resamplerLine()}\n`);
  let resolved: ResolvedEncoders;
  try {
    resolved = await resolveEncoders(config, cacheDir);
  } catch (err) {
    const message = (err as Error).message;
    const key = /^(encoders\.[a-z_.]+):/.exec(message)?.[1] ?? providersSource(config);
    return [{ key, found: message, expected: 'a config the encoders can be resolved from' }];
  }
  const problems: PreflightProblem[] = [];
  const specs: Array<ImageEncoderSpec | TextEncoderSpec> = [...resolved.images, resolved.caption];
  for (const spec of specs) {
    const key = `encoders.${spec.name}`;
    let session;
    try {
      session = await loadSession(spec.model, resolved.settings);
    } catch (err) {
      problems.push({
        key: `${key}.model`,
        found: (err as Error).message,
        expected: `an ONNX model that loads with execution providers from ${providersSource(config)}${resolved.settings.device ? ` on device ${resolved.settings.device.id} (${resolved.settings.device.from})` : ''}`,
      });
      continue;
    }
    const io = checkModelIO(spec, session);
    problems.push(...io.problems);
    if (!io.io) continue;
    try {
      if (spec.kind === 'text') await loadTokenizer(spec.tokenizer, spec.padToken);
    } catch (err) {
      problems.push({ key: `${key}.tokenizer`, found: (err as Error).message, expected: 'a Hugging Face tokenizer.json' });
      continue;
    }
    try {
      const encoder = await OnnxEncoder.open(spec, resolved.settings);
      const batch = Math.min(2, spec.batchSize);
      const { dim, data } =
        spec.kind === 'text'
          ? await (encoder as OnnxEncoder<TextEncoderSpec>).encodeTexts(['a photo of a cat on a red sofa', ''].slice(0, batch))
          : await (async () => {
              const s = spec as ImageEncoderSpec;
              const pixels = new Float32Array(batch * 3 * s.size * s.size);
              const rgb = await preprocessRgb(await testImage(), s, config.input.max_pixels);
              for (let i = 0; i < batch; i++) writeChw(rgb, s, pixels, i);
              return (encoder as OnnxEncoder<ImageEncoderSpec>).encodeImages(pixels, batch);
            })();
      if (!data.every(Number.isFinite))
        problems.push({ key: `${key}.model`, found: `a test batch gave non-finite values (dim ${dim})`, expected: 'finite embeddings' });
    } catch (err) {
      problems.push({
        key: `${key}.model`,
        found: `a test batch failed: ${(err as Error).message}`,
        expected: 'a model that runs a batch of the configured shape',
      });
    }
  }
  return problems;
}
