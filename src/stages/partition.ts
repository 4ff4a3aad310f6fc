// Partition: one unit per space, only when index.probe_shards > 0. It trains the space's shard
// router (knn/shard-router.ts) on a seeded sample of its vectors (shared(ctx).shardRouter reads it):
// assign then puts each vector in its home shard (and route each query in its probe_shards nearest)
// so that index and search read only their own rows. The sample is SAMPLE_PER_SHARD vectors a
// shard, taken whole from catalog parts in a seeded order: a part's rows are in catalog order,
// which has nothing to do with the embedding space.
import { ENCODER_NAMES, type EncoderName } from '../config/schema.ts';
import { ShardRouter } from '../knn/shard-router.ts';
import { Rng } from '../util/rng.ts';
import { readPartVectors, rowOf } from './embeddings.ts';
import { routedShards, shardCount } from './shard-plan.ts';
import type { DoneMarker, Stage, StageContext, UnitResult } from '../core/stage.ts';
import { shared } from './shared-resources.ts';

const SAMPLE_PER_SHARD = 256;

export class PartitionStage implements Stage<EncoderName> {
  readonly name = 'partition';
  readonly after = ['manifest', 'embed'];
  readonly folder = 'partition';
  decidedBy(ctx: StageContext): Record<string, unknown> {
    return { 'index.shard_size': ctx.config.index.shard_size, 'index.probe_shards > 0': routedShards(ctx.config), 'run.seed': ctx.config.run.seed };
  }
  readonly threaded = true;

  async plan(ctx: StageContext): Promise<EncoderName[]> {
    return routedShards(ctx.config) ? [...ENCODER_NAMES] : [];
  }
  unitId(e: EncoderName): string {
    return e;
  }
  doneMarkers(ctx: StageContext, e: EncoderName): DoneMarker[] {
    return [{ storage: 'work', key: ctx.layout.shardRouter(e) }];
  }

  async run(ctx: StageContext, encoder: EncoderName): Promise<UnitResult> {
    const manifest = await shared(ctx).manifest();
    const shards = shardCount(manifest, ctx.config.index.shard_size);
    const want = shards > 1 ? SAMPLE_PER_SHARD * shards : 0;
    const sample: Float32Array[] = [];
    let dim = 0;
    const rng = Rng.for(ctx.config.run.seed, 'partition', encoder);
    for (const part of rng.sample(manifest.parts, manifest.parts.length)) {
      if (sample.length >= want) break;
      const v = await readPartVectors(ctx, encoder, part.number);
      dim = v.dim;
      for (let row = 0; row < v.rows && sample.length < want; row++) if (v.mask[row]) sample.push(rowOf(v, row).slice());
    }
    const router = ShardRouter.train(sample, dim, shards, `${ctx.config.run.seed}/partition/${encoder}`);
    await ctx.work.write(ctx.layout.shardRouter(encoder), JSON.stringify(router));
    return { items: sample.length, failed: 0 };
  }
}
