// What an encoder's model takes and gives, read from the model itself, and checked against the
// config before anything runs: the input and output names, element types and shapes. Every
// mismatch names the config key, what the model really has, and what the config expected.
import type ort from 'onnxruntime-node';
import type { PreflightProblem } from '../core/problem.ts';
import type { ImageEncoderSpec, Pooling, TextEncoderSpec } from './resolve.ts';

type Meta = ort.InferenceSession.ValueMetadata;
export type FloatType = 'float32' | 'float16';

const shapeOf = (m: Meta) =>
  m.isTensor ? `${m.type} [${m.shape.map((d) => (typeof d === 'number' && d >= 0 ? d : typeof d === 'string' && d ? d : '?')).join(', ')}]` : 'not a tensor';

/** "inputs: pixel_values float16 [batch, 3, 224, 224]; outputs: last_hidden_state float32 [batch, 257, 768]". */
export function describeModel(session: ort.InferenceSession): string {
  const list = (ms: readonly Meta[]) => ms.map((m) => `${m.name} ${shapeOf(m)}`).join(', ');
  return `inputs: ${list(session.inputMetadata)}; outputs: ${list(session.outputMetadata)}`;
}

/** What the embed stage feeds and reads for one encoder, once the model checks out. */
export interface ModelIO {
  input: { name: string; type: FloatType | 'int64' | 'int32' };
  mask?: { name: string; type: 'int64' | 'int32' };
  output: { name: string; type: FloatType; rank: 2 | 3 };
}

const isStatic = (d: unknown): d is number => typeof d === 'number' && d > 0;

/** Checks the model against the spec: the ModelIO to use, or the problems (never both). */
export function checkModelIO(spec: ImageEncoderSpec | TextEncoderSpec, session: ort.InferenceSession): { io?: ModelIO; problems: PreflightProblem[] } {
  const key = `encoders.${spec.name}`;
  const model = describeModel(session);
  const problems: PreflightProblem[] = [];
  const problem = (k: string, found: string, expected: string) =>
    problems.push({ key: `${key}.${k}`, found: `${found} (model ${spec.model}: ${model})`, expected });
  const find = (list: readonly Meta[], name: string) => list.find((m) => m.name === name);

  // Inputs: every input of the model must be one we feed.
  const inputName = spec.inputName ?? session.inputNames[0];
  const input = find(session.inputMetadata, inputName);
  const maskName = spec.kind === 'text' ? spec.maskName : null;
  const mask = maskName ? find(session.inputMetadata, maskName) : undefined;
  let inputType: ModelIO['input']['type'] | undefined;
  if (!input || !input.isTensor) problem('input_name', `no tensor input "${inputName}"`, `one of the model's inputs: ${session.inputNames.join(', ')}`);
  else if (spec.kind === 'image') {
    if (input.type !== 'float32' && input.type !== 'float16')
      problem('input_name', `input "${inputName}" is ${shapeOf(input)}`, 'a float32 or float16 image input [N, 3, size, size]');
    else if (input.shape.length !== 4) problem('input_name', `input "${inputName}" is ${shapeOf(input)}`, 'an image input of rank 4: [N, 3, size, size]');
    else {
      inputType = input.type;
      const [, c, h, w] = input.shape;
      if (isStatic(c) && c !== 3) problem('input_name', `input "${inputName}" has ${c} channels`, '3 (RGB, channels first)');
      if ((isStatic(h) && h !== spec.size) || (isStatic(w) && w !== spec.size))
        problem('size', `${spec.size}, but input "${inputName}" is ${h} x ${w}`, `size: ${isStatic(h) ? h : w}`);
    }
  } else {
    if (input.type !== 'int64' && input.type !== 'int32')
      problem('input_name', `input "${inputName}" is ${shapeOf(input)}`, 'int64 or int32 token ids [N, max_length]');
    else if (input.shape.length !== 2) problem('input_name', `input "${inputName}" is ${shapeOf(input)}`, 'token ids of rank 2: [N, max_length]');
    else {
      inputType = input.type;
      const t = input.shape[1];
      if (isStatic(t) && t !== spec.maxLength) problem('max_length', `${spec.maxLength}, but input "${inputName}" takes ${t} tokens`, `max_length: ${t}`);
    }
  }
  if (maskName && !mask)
    problem('attention_mask_name', `no input "${maskName}"`, `one of ${session.inputNames.join(', ')}, or null if the model takes only ids`);
  else if (mask && (!mask.isTensor || (mask.type !== 'int64' && mask.type !== 'int32')))
    problem('attention_mask_name', `input "${maskName}" is ${shapeOf(mask)}`, 'an int64 or int32 mask [N, max_length]');
  for (const m of input ? session.inputMetadata : []) {
    if (m.name !== inputName && m.name !== maskName)
      problem(
        spec.kind === 'text' ? 'attention_mask_name' : 'input_name',
        `the model also needs input "${m.name}", which is not fed`,
        spec.kind === 'text' ? `attention_mask_name: ${m.name}, or an export that takes only ${inputName}` : 'an export with one image input',
      );
  }

  // Output: [N, D], or [N, T, D] pooled as configured.
  const outputName = spec.outputName ?? session.outputNames[0];
  const output = find(session.outputMetadata, outputName);
  let out: ModelIO['output'] | undefined;
  if (!output || !output.isTensor) problem('output_name', `no tensor output "${outputName}"`, `one of the model's outputs: ${session.outputNames.join(', ')}`);
  else if (output.type !== 'float32' && output.type !== 'float16')
    problem('output_name', `output "${outputName}" is ${shapeOf(output)}`, 'a float32 or float16 output');
  else if (output.shape.length === 2 && spec.pooling !== 'none')
    problem('pooling', `${spec.pooling}, but output "${outputName}" is already pooled: ${shapeOf(output)}`, 'pooling: none');
  else if (output.shape.length === 3 && spec.pooling === 'none')
    problem(
      'pooling',
      `none, but output "${outputName}" gives hidden states ${shapeOf(output)}`,
      spec.kind === 'text' ? 'pooling: eot (CLIP text towers), cls or mean' : 'pooling: cls (CLS token, as DINOv2 and ViT) or mean',
    );
  else if (output.shape.length !== 2 && output.shape.length !== 3)
    problem('output_name', `output "${outputName}" is ${shapeOf(output)}`, 'an embedding [N, D] or hidden states [N, T, D]');
  else if (spec.pooling === 'eot' && spec.kind === 'image') problem('pooling', 'eot on an image model', 'cls or mean (eot needs token ids)');
  else out = { name: outputName, type: output.type, rank: output.shape.length as 2 | 3 };

  if (problems.length || !inputType || !out) return { problems };
  return {
    problems,
    io: {
      input: { name: inputName, type: inputType },
      mask: mask && maskName ? { name: maskName, type: (mask as { type: 'int64' | 'int32' }).type } : undefined,
      output: out,
    },
  };
}

/**
 * [N, T, D] hidden states to [N, D]: `cls` token 0, `mean` the average over the attention mask
 * (all tokens without one), `eot` the token at the position of each row's highest id (the first
 * such position, as CLIP's argmax).
 */
export function pool(
  hidden: Float32Array,
  dims: readonly number[],
  pooling: Exclude<Pooling, 'none'>,
  tokens?: { ids: ArrayLike<bigint>; mask: ArrayLike<bigint> },
): Float32Array {
  const [n, t, d] = dims;
  const out = new Float32Array(n * d);
  for (let r = 0; r < n; r++) {
    const row = (pos: number) => hidden.subarray((r * t + pos) * d, (r * t + pos + 1) * d);
    const o = out.subarray(r * d, (r + 1) * d);
    if (pooling === 'cls') o.set(row(0));
    else if (pooling === 'eot') {
      let best = 0;
      for (let p = 1; p < t; p++) if (tokens!.ids[r * t + p] > tokens!.ids[r * t + best]) best = p;
      o.set(row(best));
    } else {
      let count = 0;
      for (let p = 0; p < t; p++) {
        if (tokens && tokens.mask[r * t + p] === 0n) continue;
        const v = row(p);
        for (let i = 0; i < d; i++) o[i] += v[i];
        count++;
      }
      if (count) for (let i = 0; i < d; i++) o[i] /= count;
    }
  }
  return out;
}
