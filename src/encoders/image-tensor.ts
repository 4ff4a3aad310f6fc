// An image's slot of an encoder's input tensor, made where the image is preprocessed (a decode
// thread) rather than by the encoder's thread: normalising to CHW float32, and float16 for fp16
// exports, cost about as much per image as a batch's inference on a GPU, and on the encoder's
// thread they would run one after the other with its session. The values are writeChw's and
// toHalfArray's, element by element, so a batch assembled from slots is the batch they would make.
import { toHalfArray } from '../util/float16.ts';
import { writeChw, type ImagePreprocess } from './image-preprocess.ts';
import { preprocessImages, type PreprocessResult, type PreprocessTask } from './preprocess-images.ts';

/** The element type of an image encoder's input. */
export type TensorType = 'float32' | 'float16';
export type ImageSlot = Float32Array | Uint16Array;

/** A task whose result is, per spec, the image's tensor slot of the given type instead of its RGB pixels. */
export interface TensorTask extends PreprocessTask {
  tensors?: TensorType[];
}
export type TensorResult = PreprocessResult | { slots: ImageSlot[] };

export function imageSlot(rgb: Uint8Array, spec: Pick<ImagePreprocess, 'size' | 'mean' | 'std'>, type: TensorType): ImageSlot {
  const slot = new Float32Array(3 * spec.size * spec.size);
  writeChw(rgb, spec, slot, 0);
  return type === 'float16' ? toHalfArray(slot) : slot;
}

/** Preprocesses the task's image, as slots when it asks for them. */
export async function preprocessToSlots(task: TensorTask): Promise<TensorResult> {
  const result = await preprocessImages(task);
  const types = task.tensors;
  if (!types || !('pixels' in result)) return result;
  return { slots: result.pixels.map((px, k) => imageSlot(px, task.specs[k], types[k])) };
}

/** The buffers of a result, to transfer rather than copy. */
export const resultBuffers = (r: TensorResult): ArrayBuffer[] =>
  'pixels' in r ? [...new Set(r.pixels.map((p) => p.buffer as ArrayBuffer))] : 'slots' in r ? r.slots.map((s) => s.buffer as ArrayBuffer) : [];
