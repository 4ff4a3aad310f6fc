// Runs an encoder's ONNX model through onnxruntime-node and returns L2-normalised vectors. The
// model's own input and output element types are used (fp16 exports get fp16 in and give fp16
// out, converted here), hidden-state outputs are pooled as configured, and a model that does not
// fit the config fails before its first batch with every mismatch named (model-io.ts).
import ort from 'onnxruntime-node';
import { fromHalfArray, toHalfArray } from '../util/float16.ts';
import { checkModelIO, pool, type ModelIO } from './model-io.ts';
import type { ImageEncoderSpec, TextEncoderSpec } from './resolve.ts';
import { loadSession, type SessionSettings } from './sessions.ts';
import { Tokenizer } from './tokenizer.ts';

export interface Vectors {
  data: Float32Array;
  dim: number;
}

const tokenizers = new Map<string, Promise<Tokenizer>>();

export function loadTokenizer(file: string, padToken?: string): Promise<Tokenizer> {
  const key = `${file}\0${padToken ?? ''}`;
  let t = tokenizers.get(key);
  if (!t) {
    t = Tokenizer.fromFile(file, padToken);
    tokenizers.set(key, t);
    t.catch(() => tokenizers.delete(key));
  }
  return t;
}

/** Normalises each row of [n, dim] in place; a zero row stays zero. */
function l2normalizeRows(v: Float32Array, dim: number): Float32Array {
  for (let r = 0; r < v.length / dim; r++) {
    let s = 0;
    for (let i = r * dim; i < (r + 1) * dim; i++) s += v[i] * v[i];
    const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
    for (let i = r * dim; i < (r + 1) * dim; i++) v[i] *= inv;
  }
  return v;
}

/** A session whose inputs and outputs have been checked against the encoder's config. */
export class OnnxEncoder<S extends ImageEncoderSpec | TextEncoderSpec = ImageEncoderSpec | TextEncoderSpec> {
  private constructor(
    readonly spec: S,
    readonly session: ort.InferenceSession,
    readonly io: ModelIO,
  ) {}

  /** Loads (or reuses) the session; throws one error listing every mismatch with the config. */
  static async open<S extends ImageEncoderSpec | TextEncoderSpec>(spec: S, settings: SessionSettings): Promise<OnnxEncoder<S>> {
    const session = await loadSession(spec.model, settings).catch((err: Error) => {
      throw new Error(`encoders.${spec.name}.model: ${err.message}`);
    });
    const { io, problems } = checkModelIO(spec, session);
    if (!io)
      throw new Error(
        `encoders.${spec.name}: the model does not fit the config:\n${problems.map((p) => `  ${p.key}: ${p.found}; expected ${p.expected}`).join('\n')}`,
      );
    return new OnnxEncoder(spec, session, io);
  }

  private async run(feeds: Record<string, ort.Tensor>, n: number, tokens?: { ids: BigInt64Array; mask: BigInt64Array }): Promise<Vectors> {
    const { output } = this.io;
    let result: ort.Tensor;
    try {
      result = (await this.session.run(feeds, [output.name]))[output.name];
    } catch (err) {
      throw new Error(`encoders.${this.spec.name}: ${this.spec.model}: ${(err as Error).message}`);
    }
    const dims = result.dims.map(Number);
    const where = `encoders.${this.spec.name}: output "${output.name}" of ${this.spec.model}`;
    if (dims.length !== output.rank || dims[0] !== n)
      throw new Error(`${where} is [${dims.join(', ')}] for a batch of ${n}, expected [${n}, ${output.rank === 3 ? 'T, ' : ''}D]`);
    let data = result.type === 'float16' ? fromHalfArray(result.data as Uint16Array) : new Float32Array(result.data as Float32Array);
    if (output.rank === 3) {
      const maxLength = this.spec.kind === 'text' ? this.spec.maxLength : undefined;
      if (maxLength !== undefined && dims[1] !== maxLength)
        throw new Error(`${where} has ${dims[1]} positions, expected one per token (max_length ${maxLength}) for pooling ${this.spec.pooling}`);
      data = pool(data, dims, this.spec.pooling as 'cls' | 'mean' | 'eot', tokens);
    }
    const dim = dims[dims.length - 1];
    return { data: l2normalizeRows(data, dim), dim };
  }

  /** `pixels` is a [n, 3, size, size] float32 tensor made with writeChw. */
  encodeImages(this: OnnxEncoder<ImageEncoderSpec>, pixels: Float32Array, n: number): Promise<Vectors> {
    const values = pixels.subarray(0, n * 3 * this.spec.size * this.spec.size);
    return this.encodeImageTensor(this.io.input.type === 'float16' ? toHalfArray(values) : values, n);
  }

  /** `data` is the [n, 3, size, size] input already in the model's element type (float16 as its bits). */
  encodeImageTensor(this: OnnxEncoder<ImageEncoderSpec>, data: Float32Array | Uint16Array, n: number): Promise<Vectors> {
    const { size } = this.spec;
    const dims = [n, 3, size, size];
    const tensor = data instanceof Uint16Array ? new ort.Tensor('float16', data, dims) : new ort.Tensor('float32', data, dims);
    return this.run({ [this.io.input.name]: tensor }, n);
  }

  async encodeTexts(this: OnnxEncoder<TextEncoderSpec>, texts: string[]): Promise<Vectors> {
    const tokenizer = await loadTokenizer(this.spec.tokenizer, this.spec.padToken);
    const { ids, mask } = tokenizer.encodeBatch(texts, this.spec.maxLength);
    const dims = [texts.length, this.spec.maxLength];
    const int = (v: BigInt64Array, type: 'int64' | 'int32') =>
      type === 'int64' ? new ort.Tensor('int64', v, dims) : new ort.Tensor('int32', Int32Array.from(v, Number), dims);
    const feeds: Record<string, ort.Tensor> = { [this.io.input.name]: int(ids, this.io.input.type as 'int64' | 'int32') };
    if (this.io.mask) feeds[this.io.mask.name] = int(mask, this.io.mask.type);
    return this.run(feeds, texts.length, { ids, mask });
  }
}
