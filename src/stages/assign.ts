// Assign: one unit per catalog part, only when index.probe_shards > 0. Each space's router
// (partition.ts) puts every embedded row of the part in its home shard, and in its second nearest
// too when it lies within index.shard_overlap of that border; each shard's rows are written apart
// (shard-rows.ts), so an index unit reads only its members instead of every part.
import type { ShardRouter } from '../knn/shard-router.ts';
import { routedShards } from './shard-plan.ts';
import { ShardRowsStage } from './shard-rows.ts';
import type { StageContext } from '../core/stage.ts';

export class AssignStage extends ShardRowsStage {
  readonly name = 'assign';
  readonly folder = 'assigned';
  decidedBy(ctx: StageContext): Record<string, unknown> {
    return routedShards(ctx.config) ? { 'index.shard_overlap': ctx.config.index.shard_overlap } : { 'index.probe_shards > 0': false };
  }
  protected shardsOf(ctx: StageContext, router: ShardRouter) {
    return (v: Float32Array) => router.homes(v, ctx.config.index.shard_overlap);
  }
  protected files(ctx: StageContext) {
    return { rows: ctx.layout.shardMembers, done: ctx.layout.shardMembersDone };
  }
}
