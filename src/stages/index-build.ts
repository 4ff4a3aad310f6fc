// Index: one unit per (encoder, index shard). A shard covers a contiguous range of global image
// ids (index.shard_size of them) and holds every embedded image in that range; or, with
// index.probe_shards > 0, the images the assign stage put in it (their home shard by the space's
// router, and the second nearest of those near a border: index.shard_overlap), read from the
// members that assign wrote it from each part.
import { ENCODER_NAMES, type EncoderName } from '../config/schema.ts';
import { buildShard } from '../knn/hnsw-shard.ts';
import { readPartVectors, rowOf } from './embeddings.ts';
import type { CatalogManifest } from './manifest.ts';
import { routedShards, shardCount, type IndexUnit, type ShardMeta } from './shard-plan.ts';
import { readShardRows } from './shard-rows.ts';
import type { DoneMarker, Stage, StageContext, UnitResult } from '../core/stage.ts';
import { shared } from './shared-resources.ts';

export class IndexStage implements Stage<IndexUnit> {
  readonly name = 'index';
  readonly after = ['manifest', 'embed', 'partition', 'assign'];
  readonly folder = 'index';
  decidedBy(ctx: StageContext): Record<string, unknown> {
    const { shard_size, m, ef_construction } = ctx.config.index;
    return {
      'index.shard_size': shard_size,
      'index.probe_shards > 0': routedShards(ctx.config),
      'index.m': m,
      'index.ef_construction': ef_construction,
      'run.seed': ctx.config.run.seed,
    };
  }
  readonly threaded = true;

  async plan(ctx: StageContext): Promise<IndexUnit[]> {
    const shards = shardCount(await shared(ctx).manifest(), ctx.config.index.shard_size);
    return ENCODER_NAMES.flatMap((encoder) => Array.from({ length: shards }, (_, shard) => ({ encoder, shard })));
  }
  unitId(u: IndexUnit): string {
    return `${u.encoder}-shard-${String(u.shard).padStart(2, '0')}`;
  }
  doneMarkers(ctx: StageContext, u: IndexUnit): DoneMarker[] {
    return [{ storage: 'work', key: ctx.layout.indexShardMeta(u.encoder, u.shard) }];
  }

  async run(ctx: StageContext, u: IndexUnit): Promise<UnitResult> {
    const manifest = await shared(ctx).manifest();
    const routed = routedShards(ctx.config);
    const first = routed ? 0 : u.shard * ctx.config.index.shard_size;
    const end = routed ? manifest.total : Math.min(first + ctx.config.index.shard_size, manifest.total);
    const { points, dim } = routed ? await members(ctx, u, manifest) : await idRange(ctx, u.encoder, manifest, first, end);
    const { m, ef_construction } = ctx.config.index;
    if (points.length) {
      await buildShard(ctx.work, ctx.layout.indexShard(u.encoder, u.shard), dim, points, points.length, {
        m,
        efConstruction: ef_construction,
        seed: ctx.config.run.seed,
      });
    }
    const meta: ShardMeta = { encoder: u.encoder, shard: u.shard, first, end, count: points.length, dim, m, ef_construction };
    await ctx.work.write(ctx.layout.indexShardMeta(u.encoder, u.shard), JSON.stringify(meta, null, 1));
    return { items: points.length, failed: 0 };
  }
}

type Points = { points: Array<{ id: number; vector: Float32Array }>; dim: number };

/** A routed shard's members: the rows the assign stage wrote it from each part. */
async function members(ctx: StageContext, u: IndexUnit, manifest: CatalogManifest): Promise<Points> {
  const out: Points = { points: [], dim: 0 };
  for (const part of manifest.parts) {
    const rows = await readShardRows(ctx, ctx.layout.shardMembers(u.encoder, u.shard, part.number));
    const dim = (out.dim = rows.dim);
    rows.rows.forEach((row, i) => out.points.push({ id: part.offset + row, vector: rows.data.subarray(i * dim, (i + 1) * dim) }));
  }
  return out;
}

/** Every embedded image with a global id in [first, end), read from the parts that hold them. */
async function idRange(ctx: StageContext, encoder: EncoderName, manifest: CatalogManifest, first: number, end: number): Promise<Points> {
  const out: Points = { points: [], dim: 0 };
  for (const part of manifest.parts) {
    if (part.offset + part.rows <= first || part.offset >= end || part.rows === 0) continue;
    const v = await readPartVectors(ctx, encoder, part.number);
    out.dim = v.dim;
    for (let row = Math.max(0, first - part.offset); row < Math.min(part.rows, end - part.offset); row++) {
      if (v.mask[row]) out.points.push({ id: part.offset + row, vector: rowOf(v, row) });
    }
  }
  return out;
}
