// Runs an encoder's ONNX model through onnxruntime-node and returns L2-normalised vectors. One
// session per model file per process: sessions are costly to create and safe to share.
import ort from 'onnxruntime-node';
import { Tokenizer } from './tokenizer.ts';
import type { ImageEncoderSpec, TextEncoderSpec } from './resolve.ts';

const sessions = new Map<string, Promise<ort.InferenceSession>>();
const tokenizers = new Map<string, Promise<Tokenizer>>();

/** Execution providers, most preferred first: `cuda` on GPU nodes (MEGAPAIRS_EXECUTION_PROVIDERS=cuda,cpu). */
function executionProviders(): string[] {
  return (process.env.MEGAPAIRS_EXECUTION_PROVIDERS ?? 'cpu').split(',').map((s) => s.trim()).filter(Boolean);
}

function loadSession(model: string): Promise<ort.InferenceSession> {
  let s = sessions.get(model);
  if (!s) {
    s = ort.InferenceSession.create(model, { executionProviders: executionProviders(), graphOptimizationLevel: 'all' }).catch((err: Error) => {
      sessions.delete(model);
      throw new Error(`cannot load ONNX model ${model}: ${err.message}`);
    });
    sessions.set(model, s);
  }
  return s;
}

function loadTokenizer(file: string): Promise<Tokenizer> {
  let t = tokenizers.get(file);
  if (!t) {
    t = Tokenizer.fromFile(file);
    tokenizers.set(file, t);
    t.catch(() => tokenizers.delete(file));
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

async function runForVectors(session: ort.InferenceSession, feeds: Record<string, ort.Tensor>, outputName: string | undefined, n: number, model: string): Promise<{ data: Float32Array; dim: number }> {
  const name = outputName ?? session.outputNames[0];
  if (!session.outputNames.includes(name)) throw new Error(`${model}: no output "${name}" (outputs: ${session.outputNames.join(', ')})`);
  const out = (await session.run(feeds, [name]))[name];
  if (out.type !== 'float32' || out.dims.length !== 2 || out.dims[0] !== n) {
    throw new Error(`${model}: output "${name}" is ${out.type} [${out.dims.join(', ')}], expected float32 [${n}, dim] (set output_name to the pooled embedding output)`);
  }
  const dim = Number(out.dims[1]);
  return { data: l2normalizeRows(new Float32Array(out.data as Float32Array), dim), dim };
}

/** `pixels` is a [n, 3, size, size] tensor made with writeChw. */
export async function encodeImages(spec: ImageEncoderSpec, pixels: Float32Array, n: number): Promise<{ data: Float32Array; dim: number }> {
  const session = await loadSession(spec.model);
  const input = spec.inputName ?? session.inputNames[0];
  const feeds = { [input]: new ort.Tensor('float32', pixels.subarray(0, n * 3 * spec.size * spec.size), [n, 3, spec.size, spec.size]) };
  return runForVectors(session, feeds, spec.outputName, n, spec.model);
}

export async function encodeTexts(spec: TextEncoderSpec, texts: string[]): Promise<{ data: Float32Array; dim: number }> {
  const [session, tokenizer] = await Promise.all([loadSession(spec.model), loadTokenizer(spec.tokenizer)]);
  const { ids, mask } = tokenizer.encodeBatch(texts, spec.maxLength);
  const dims = [texts.length, spec.maxLength];
  const feeds: Record<string, ort.Tensor> = { [spec.inputName]: new ort.Tensor('int64', ids, dims) };
  if (spec.maskName) feeds[spec.maskName] = new ort.Tensor('int64', mask, dims);
  return runForVectors(session, feeds, spec.outputName, texts.length, spec.model);
}
