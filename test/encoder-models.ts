// Small ONNX exports shaped like real ones, written with the project's own ONNX writer so tests
// need no torch: an fp16 image tower, a hidden-state-only image model (DINOv2-style, [N, T, D]),
// and text towers giving hidden states from a token table (CLIP-style, int64 or int32 ids).
import { attr, encodeModel, GraphBuilder, type ElementType } from '../src/encoders/onnx-writer.ts';

export const IMAGE_SIZE = 8;
export const DIM = 4;

/** Seeded weights: [rows, cols] with small varied values. */
export const weights = (rows: number, cols: number, seed = 1) =>
  Float32Array.from({ length: rows * cols }, (_, i) => Math.sin(seed * 12.9898 + i * 78.233) * 0.5);

/** float16 pixel_values [N, 3, S, S] -> channel means @ W[3, DIM] -> float16 image_embeds [N, DIM]. */
export function fp16ImageModel(): Uint8Array {
  const g = new GraphBuilder();
  const x = g.op('Cast', ['pixel_values'], { to: attr.int(1) });
  const m = g.op('ReduceMean', [x], { axes: attr.ints([2, 3]), keepdims: attr.int(0) });
  const y = g.op('MatMul', [m, g.floats('w', [3, DIM], weights(3, DIM))]);
  g.op('Cast', [y], { to: attr.int(10) }, 'image_embeds');
  return model(
    g,
    [{ name: 'pixel_values', type: 'float16', shape: ['batch', 3, IMAGE_SIZE, IMAGE_SIZE] }],
    [{ name: 'image_embeds', type: 'float16', shape: ['batch', DIM] }],
  );
}

/** float32 pixel_values [N, 3, S, S] -> last_hidden_state [N, S*S, DIM]: each pixel a token, RGB @ W. */
export function hiddenStateImageModel(): Uint8Array {
  const g = new GraphBuilder();
  const tokens = g.op('Reshape', ['pixel_values', g.int64s('shape', [3], [0, 3, -1])]);
  const t = g.op('Transpose', [tokens], { perm: attr.ints([0, 2, 1]) });
  g.op('MatMul', [t, g.floats('w', [3, DIM], weights(3, DIM, 2))], undefined, 'last_hidden_state');
  return model(
    g,
    [{ name: 'pixel_values', type: 'float32', shape: ['batch', 3, IMAGE_SIZE, IMAGE_SIZE] }],
    [{ name: 'last_hidden_state', type: 'float32', shape: ['batch', IMAGE_SIZE * IMAGE_SIZE, DIM] }],
  );
}

/** ids [N, T] (int64 or int32), attention_mask [N, T] -> last_hidden_state [N, T, DIM] = table[ids] * mask. */
export function hiddenStateTextModel(vocab: number, table: Float32Array, idType: ElementType = 'int64'): Uint8Array {
  const g = new GraphBuilder();
  const h = g.op('Gather', [g.floats('table', [vocab, DIM], table), 'input_ids'], { axis: attr.int(0) });
  const m = g.op('Unsqueeze', [g.op('Cast', ['attention_mask'], { to: attr.int(1) }), g.int64s('axes', [1], [2])]);
  g.op('Mul', [h, m], undefined, 'last_hidden_state');
  return model(
    g,
    [
      { name: 'input_ids', type: idType, shape: ['batch', 'sequence'] },
      { name: 'attention_mask', type: idType, shape: ['batch', 'sequence'] },
    ],
    [{ name: 'last_hidden_state', type: 'float32', shape: ['batch', 'sequence', DIM] }],
  );
}

function model(
  g: GraphBuilder,
  inputs: Parameters<typeof encodeModel>[0]['graph']['inputs'],
  outputs: Parameters<typeof encodeModel>[0]['graph']['outputs'],
): Uint8Array {
  return encodeModel({ graph: { name: 'test', nodes: g.nodes, initializers: g.initializers, inputs, outputs } });
}
