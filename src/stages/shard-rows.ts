// A catalog part's rows grouped by index shard, for routed shards (index.probe_shards > 0). The
// assign stage writes each shard the rows it indexes, the route stage each shard the rows searched
// in it; so an index or search unit reads its own rows only, and the vectors read for mining grow
// with the corpus (x the shards each row is in), not with corpus x shards, and each vector is
// routed once. One pair of files per (space, shard, part): the rows' numbers in the part (int32)
// and their vectors as embed stored them (float32 or float16 bits), every shard's pair written even
// when it holds no row, so a reader never asks whether one exists.
import { decodeNpy, encodeNpy, floatData } from '../artifacts/npy.ts';
import { ENCODER_NAMES, type EncoderName } from '../config/schema.ts';
import type { ShardRouter } from '../knn/shard-router.ts';
import { readPartVectors, rowOf, type PartVectors } from './embeddings.ts';
import { routedShards } from './shard-plan.ts';
import { PartStage } from './part-stage.ts';
import type { DoneMarker, StageContext, UnitResult } from '../core/stage.ts';
import { shared } from './shared-resources.ts';

/** Where one shard's rows of one part are. */
export interface ShardRowsKeys {
  rows: string;
  vectors: string;
}

export interface ShardRows {
  /** Row numbers in the part, ascending. */
  rows: Int32Array;
  dim: number;
  /** [rows, dim], as float32. */
  data: Float32Array;
}

/** Writes each of `shards` shards the part's embedded rows that `shardsOf` puts in it; returns the rows per shard. */
export async function writeShardRows(
  ctx: StageContext,
  part: PartVectors,
  shards: number,
  shardsOf: (vector: Float32Array) => number[],
  keysOf: (shard: number) => ShardRowsKeys,
): Promise<number[]> {
  const members: number[][] = Array.from({ length: shards }, () => []);
  for (let row = 0; row < part.rows; row++) if (part.mask[row]) for (const s of shardsOf(rowOf(part, row))) members[s].push(row);
  const { dim, stored } = part;
  for (let s = 0; s < shards; s++) {
    const rows = members[s];
    const vectors = stored instanceof Uint16Array ? new Uint16Array(rows.length * dim) : new Float32Array(rows.length * dim);
    rows.forEach((row, i) => vectors.set(stored.subarray(row * dim, (row + 1) * dim), i * dim));
    const keys = keysOf(s);
    await ctx.work.write(keys.rows, encodeNpy(Int32Array.from(rows), [rows.length]));
    await ctx.work.write(keys.vectors, encodeNpy(vectors, [rows.length, dim]));
  }
  return members.map((m) => m.length);
}

export async function readShardRows(ctx: StageContext, keys: ShardRowsKeys): Promise<ShardRows> {
  const [rows, vectors] = await Promise.all([ctx.work.read(keys.rows), ctx.work.read(keys.vectors)]);
  const r = decodeNpy(rows, ctx.work.uri(keys.rows));
  const v = decodeNpy(vectors, ctx.work.uri(keys.vectors));
  if (v.shape[0] !== r.shape[0]) throw new Error(`${ctx.work.uri(keys.vectors)}: ${v.shape[0]} vectors for ${r.shape[0]} rows in ${ctx.work.uri(keys.rows)}`);
  return { rows: r.data as Int32Array, dim: v.shape[1] ?? 0, data: floatData(v, ctx.work.uri(keys.vectors)) };
}

/**
 * What assign and route share: a unit per catalog part (none unless shards are routed) that reads
 * each space's vectors once and writes every shard the rows `shardsOf` puts in it, then a JSON of
 * the rows per shard per space that marks the unit complete.
 */
export abstract class ShardRowsStage extends PartStage {
  readonly after = ['manifest', 'embed', 'partition'];
  readonly threaded = true;
  /** The shards a row goes to, by the space's router. */
  protected abstract shardsOf(ctx: StageContext, router: ShardRouter): (vector: Float32Array) => number[];
  /** Where its rows go (a space's shard's rows of a part), and the marker of a complete unit. */
  protected abstract files(ctx: StageContext): { rows: (encoder: EncoderName, shard: number, n: number) => ShardRowsKeys; done: (n: number) => string };

  async plan(ctx: StageContext): Promise<number[]> {
    return routedShards(ctx.config) ? super.plan(ctx) : [];
  }
  doneMarkers(ctx: StageContext, n: number): DoneMarker[] {
    return [{ storage: 'work', key: this.files(ctx).done(n) }];
  }

  async run(ctx: StageContext, n: number): Promise<UnitResult> {
    const files = this.files(ctx);
    const counts = {} as Record<EncoderName, number[]>;
    let embedded = 0; // the mask is every space's
    for (const encoder of ENCODER_NAMES) {
      const router = await shared(ctx).shardRouter(encoder);
      const part = await readPartVectors(ctx, encoder, n);
      embedded = part.mask.reduce((a, b) => a + b, 0);
      counts[encoder] = await writeShardRows(ctx, part, router.shards, this.shardsOf(ctx, router), (s) => files.rows(encoder, s, n));
    }
    await ctx.work.write(files.done(n), JSON.stringify(counts));
    return { items: embedded, failed: 0 };
  }
}
