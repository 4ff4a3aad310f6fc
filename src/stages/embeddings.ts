// Reading a catalog part's embeddings back: one encoder's [rows, dim] matrix and the part's mask.
// Every stage that reads vectors (index, search, recall) reads them here, as float32 whatever
// `embed.dtype` stored them as.
import { decodeNpy, floatData } from '../artifacts/npy.ts';
import type { EncoderName } from '../config/schema.ts';
import type { StageContext } from '../core/stage.ts';

export interface PartVectors {
  rows: number;
  dim: number;
  data: Float32Array;
  /** The values as stored (float32, or float16 bits): rows copied from here keep their exact bits. */
  stored: Float32Array | Uint16Array;
  mask: Uint8Array;
}

export async function readPartVectors(ctx: StageContext, encoder: EncoderName, n: number): Promise<PartVectors> {
  const [vecKey, maskKey] = [ctx.layout.embeddingPart(encoder, n), ctx.layout.embeddingMask(n)];
  const work = ctx.work;
  const [vec, mask] = await Promise.all([work.read(vecKey), work.read(maskKey)]);
  const v = decodeNpy(vec, work.uri(vecKey));
  const m = decodeNpy(mask, work.uri(maskKey));
  const data = floatData(v, work.uri(vecKey));
  return { rows: v.shape[0], dim: v.shape[1] ?? 0, data, stored: v.dtype === '<f2' ? (v.data as Uint16Array) : data, mask: m.data as Uint8Array };
}

export const rowOf = (p: PartVectors, row: number) => p.data.subarray(row * p.dim, (row + 1) * p.dim);
