// Route: one unit per catalog part, only when index.probe_shards > 0. Each space's router
// (partition.ts) sends every embedded row of the part to its probe_shards nearest shards; each
// shard's rows are written apart (shard-rows.ts), so a search unit reads only the queries it
// searches instead of every part. A stage of its own, not assign's: changing probe_shards routes
// again but keeps the shards.
import type { ShardRouter } from '../knn/shard-router.ts';
import { ShardRowsStage } from './shard-rows.ts';
import type { StageContext } from '../core/stage.ts';

export class RouteStage extends ShardRowsStage {
  readonly name = 'route';
  readonly folder = 'routed';
  decidedBy(ctx: StageContext): Record<string, unknown> {
    return { 'index.probe_shards': ctx.config.index.probe_shards };
  }
  protected shardsOf(ctx: StageContext, router: ShardRouter) {
    return (v: Float32Array) => router.route(v, ctx.config.index.probe_shards);
  }
  protected files(ctx: StageContext) {
    return { rows: ctx.layout.shardQueries, done: ctx.layout.shardQueriesDone };
  }
}
