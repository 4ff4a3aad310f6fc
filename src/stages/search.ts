// Search, shard-major: one unit per (space, index shard, block of query parts). The unit loads its
// shard once, streams the block's query parts past it one at a time, and writes each part's
// partial top-(k+1) list; the mine stage merges a part's lists from every shard. So every shard is
// read once per unit, not once per query part, and a unit holds one shard and one query part:
// memory is checked against index.memory_budget_mb when the stage is planned. A part's queries are
// searched nearby ones together (knn/locality-order.ts), for the CPU caches' sake. With
// index.probe_shards > 0 a unit reads and searches only the queries that the route stage sent its
// shard (it is among their probe_shards nearest); the other rows' lists stay empty.
import { countShardRead } from '../metrics/registry.ts';
import { partName } from '../core/layout.ts';
import { encodeNpy } from '../artifacts/npy.ts';
import { ENCODER_NAMES, type EncoderName } from '../config/schema.ts';
import { loadShard, shardBytes, type LoadedShard } from '../knn/hnsw-shard.ts';
import { localityOrder } from '../knn/locality-order.ts';
import { seedFrom } from '../util/rng.ts';
import { readPartVectors } from './embeddings.ts';
import { shardCount, type ShardMeta } from './shard-plan.ts';
import type { CatalogManifest } from './manifest.ts';
import { routedShards } from './shard-plan.ts';
import { readShardRows } from './shard-rows.ts';
import type { DoneMarker, Stage, StageContext, UnitResult } from '../core/stage.ts';
import { shared } from './shared-resources.ts';

export interface SearchUnit {
  encoder: EncoderName;
  shard: number;
  /** The query parts (part numbers) this unit searches in its shard. */
  parts: number[];
}

const MiB = 1024 * 1024;

/** What a search unit holds at once: the loaded shard, one query part's vectors and its partial list. */
export function searchUnitBytes(meta: ShardMeta, partRows: number, dim: number, k: number): number {
  return shardBytes(meta.count, meta.dim, meta.m) + partRows * (dim * 4 + 1) + partRows * (k + 1) * 8;
}

/** The query parts in blocks of mine.query_parts_per_unit (0: one block of all). */
function blocks(manifest: CatalogManifest, perUnit: number): number[][] {
  const parts = manifest.parts.map((p) => p.number);
  const size = perUnit > 0 ? perUnit : Math.max(1, parts.length);
  return Array.from({ length: Math.ceil(parts.length / size) }, (_, i) => parts.slice(i * size, (i + 1) * size));
}

/** Near-duplicates kept per query and shard: an image with more is in a cluster of copies, and these are enough to keep them out of its negatives. */
const NEAR_DUPLICATES_MAX = 256;

/**
 * Every neighbour at or above the band's upper bound (a near-duplicate), up to NEAR_DUPLICATES_MAX:
 * when all k+1 retrieved are near-duplicates, the search is widened until one is not. The selection
 * keeps these out of hard negatives; the k nearest alone miss them for an image with many copies.
 */
function nearDuplicates(shard: LoadedShard, query: Float32Array, ids: number[], distances: number[], high: number): number[] {
  let n = ids.length;
  while (n > 0 && 1 - distances[n - 1] >= high && n < shard.count && n < NEAR_DUPLICATES_MAX) {
    n = Math.min(n * 4, shard.count, NEAR_DUPLICATES_MAX);
    ({ neighbors: ids, distances } = shard.knn(query, n));
  }
  return ids.filter((_, i) => 1 - distances[i] >= high);
}

export class SearchStage implements Stage<SearchUnit> {
  readonly name = 'search';
  readonly after = ['manifest', 'embed', 'partition', 'route', 'index'];
  readonly folder = 'search';
  /** K, the near-duplicate bound (the band's top) and ef_search; how parts are grouped into units only paces the work. */
  decidedBy(ctx: StageContext): Record<string, unknown> {
    const { ef_search, probe_shards } = ctx.config.index;
    return { 'mine.k': ctx.config.mine.k, 'mine.band[1]': ctx.config.mine.band[1], 'index.ef_search': ef_search, 'index.probe_shards': probe_shards };
  }
  readonly threaded = true;

  async plan(ctx: StageContext): Promise<SearchUnit[]> {
    const manifest = await shared(ctx).manifest();
    const { memory_budget_mb, shard_size } = ctx.config.index;
    const largestPart = Math.max(0, ...manifest.parts.map((p) => p.rows));
    const units: SearchUnit[] = [];
    for (const encoder of ENCODER_NAMES) {
      for (let shard = 0; shard < shardCount(manifest, shard_size); shard++) {
        const meta = await shared(ctx).shardMeta({ encoder, shard });
        const need = searchUnitBytes(meta, largestPart, meta.dim, ctx.config.mine.k);
        if (need > memory_budget_mb * MiB) {
          throw new Error(
            `index.memory_budget_mb: a search unit of ${encoder} shard ${shard} needs ${(need / MiB).toFixed(1)} MiB ` +
              `(the shard ${(shardBytes(meta.count, meta.dim, meta.m) / MiB).toFixed(1)} MiB, ${meta.count} vectors of ${meta.dim} floats, ` +
              `plus a query part of ${largestPart} rows), over the budget of ${memory_budget_mb} MiB: lower index.shard_size or raise index.memory_budget_mb`,
          );
        }
        for (const parts of blocks(manifest, ctx.config.mine.query_parts_per_unit)) units.push({ encoder, shard, parts });
      }
    }
    return units;
  }

  unitId(u: SearchUnit): string {
    return `${u.encoder}-shard-${String(u.shard).padStart(2, '0')}-${partName(u.parts[0])}-to-${partName(u.parts[u.parts.length - 1])}`;
  }

  doneMarkers(ctx: StageContext, u: SearchUnit): DoneMarker[] {
    return u.parts.map((n) => ({ storage: 'work', key: ctx.layout.searchDistances(u.encoder, u.shard, n) }));
  }

  async run(ctx: StageContext, u: SearchUnit): Promise<UnitResult> {
    const meta = await shared(ctx).shardMeta(u);
    const width = ctx.config.mine.k + 1; // the query finds itself first; mine drops it
    const high = ctx.config.mine.band[1];
    const manifest = await shared(ctx).manifest();
    const shard = await loadShard(
      ctx.work,
      ctx.layout.indexShard(u.encoder, u.shard),
      meta.dim,
      meta.count,
      ctx.config.index.ef_search,
      countShardRead(u.encoder),
    );
    let searched = 0;
    try {
      for (const n of u.parts) {
        if (await ctx.work.exists(ctx.layout.searchDistances(u.encoder, u.shard, n))) continue; // done before an interruption
        const { rows, offset } = manifest.parts.find((p) => p.number === n)!;
        const queries = await this.queries(ctx, u, n);
        const ids = new Int32Array(rows * width).fill(-1);
        const distances = new Float32Array(rows * width).fill(Number.NaN);
        const nearByRow: number[][] = [];
        const query = (i: number) => queries.data.subarray(i * queries.dim, (i + 1) * queries.dim);
        for (const i of localityOrder(queries.data, queries.dim, queries.searched, seedFrom('search order', n))) {
          const row = queries.partRow(i);
          const { neighbors, distances: d } = shard.knn(query(i), width);
          ids.set(neighbors, row * width);
          distances.set(d, row * width);
          nearByRow[row] = nearDuplicates(shard, query(i), neighbors, d, high).filter((id) => id !== offset + row);
          searched++;
        }
        // Written in row order, whatever order the rows were searched in.
        const near = nearByRow.flatMap((found, row) => found.flatMap((id) => [offset + row, id]));
        await ctx.work.write(ctx.layout.searchIds(u.encoder, u.shard, n), encodeNpy(ids, [rows, width]));
        await ctx.work.write(ctx.layout.searchNearDuplicates(u.encoder, u.shard, n), encodeNpy(Int32Array.from(near), [near.length / 2, 2]));
        await ctx.work.write(ctx.layout.searchDistances(u.encoder, u.shard, n), encodeNpy(distances, [rows, width]));
      }
    } finally {
      shard.release();
    }
    return { items: searched, failed: 0 };
  }

  /**
   * The part's rows searched in the unit's shard: every embedded row of the part, or (routed) those
   * the route stage sent the shard. `searched` are rows of `data`, `partRow` their rows in the part.
   */
  private async queries(ctx: StageContext, u: SearchUnit, n: number) {
    if (routedShards(ctx.config)) {
      const routed = await readShardRows(ctx, ctx.layout.shardQueries(u.encoder, u.shard, n));
      return { data: routed.data, dim: routed.dim, searched: Array.from(routed.rows.keys()), partRow: (i: number) => routed.rows[i] };
    }
    const v = await readPartVectors(ctx, u.encoder, n);
    const embedded = Array.from({ length: v.rows }, (_, row) => row).filter((row) => v.mask[row]);
    return { data: v.data, dim: v.dim, searched: embedded, partRow: (row: number) => row };
  }
}
