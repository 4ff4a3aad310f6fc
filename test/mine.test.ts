// Mining on the demo slice, sharded: the shard-major search gives exactly the neighbours of searching
// every shard per query; the selected pairs follow the paper's rules, checked against the vectors.
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { readParquet } from '../src/artifacts/parquet.ts';
import { pairsSchema, type PairRow } from '../src/artifacts/tables.ts';
import { ENCODER_NAMES, type EncoderName } from '../src/config/schema.ts';
import { loadShard, mergeTopK, type LoadedShard } from '../src/knn/hnsw-shard.ts';
import { createContext } from '../src/runner/context.ts';
import { runLocal } from '../src/runner/local.ts';
import { ProgressReporter } from '../src/runner/progress.ts';
import { readPartVectors, rowOf } from '../src/stages/embeddings.ts';
import { shardCount } from '../src/stages/shard-plan.ts';
import { partNeighbours } from '../src/stages/mine.ts';
import { readMiningSummary } from '../src/stages/mining-stats.ts';
import { SearchStage } from '../src/stages/search.ts';
import type { StageContext } from '../src/core/stage.ts';
import { AnnotateStage } from '../src/stages/annotate.ts';
import { catalogSchema, type CatalogRow } from '../src/artifacts/tables.ts';
import { lookupImages } from '../src/stages/catalog-lookup.ts';
import { EmitStage } from '../src/stages/emit.ts';
import type { Storage } from '../src/storage/storage.ts';
import { Rng } from '../src/util/rng.ts';
import { demoConfig, sampleSlice, stagesUpTo, tempDir } from './helpers.ts';
import { shared } from '../src/stages/shared-resources.ts';

const quiet = new ProgressReporter(process.stderr, true);
let input: string;
let ctx: StageContext;

before(async () => {
  input = await sampleSlice();
  // 40 images per shard: 4 shards per space over the 150 images.
  ctx = createContext(demoConfig(input, tempDir('mine'), { index: { shard_size: 40 } }));
  await runLocal(ctx, { progress: quiet, stages: stagesUpTo('select') });
});

async function allPairs(c: StageContext): Promise<PairRow[]> {
  const out: PairRow[] = [];
  for (const p of (await shared(c).manifest()).parts) out.push(...(await readParquet<PairRow>(c.work, c.layout.pairsPart(p.number), pairsSchema)));
  return out;
}

test('shard-major search then a merge per part gives the neighbours of searching every shard per query', async () => {
  const manifest = await shared(ctx).manifest();
  const { k } = ctx.config.mine;
  assert.equal(shardCount(manifest, 40), 4);
  for (const encoder of ENCODER_NAMES) {
    const shards: LoadedShard[] = [];
    for (let s = 0; s < 4; s++) {
      const meta = await shared(ctx).shardMeta({ encoder, shard: s });
      shards.push(await loadShard(ctx.work, ctx.layout.indexShard(encoder, s), meta.dim, meta.count, ctx.config.index.ef_search));
    }
    for (const p of manifest.parts) {
      const v = await readPartVectors(ctx, encoder, p.number);
      const merged = await partNeighbours(ctx, encoder, p.number);
      for (let row = 0; row < v.rows; row++) {
        // The algorithm before shard-major mining: each query searched in every shard, then merged.
        const exhaustive = v.mask[row]
          ? mergeTopK(
              shards.map((s) => s.search(rowOf(v, row), k + 1)),
              k + 1,
            )
              .filter((nb) => nb.id !== p.offset + row)
              .slice(0, k)
          : [];
        assert.deepEqual(merged[row], exhaustive, `${encoder} part ${p.number} row ${row}`);
      }
    }
    shards.forEach((s) => s.release());
  }
});

test('pairs: one row per (query, target), relation first by priority, no near-duplicate or target among the negatives', async () => {
  const { band, hard_negatives, relation_priority, max_pairs_per_target } = ctx.config.mine;
  const manifest = await shared(ctx).manifest();
  const vectors = new Map<EncoderName, Float32Array[]>();
  for (const e of ENCODER_NAMES) {
    const all: Float32Array[] = [];
    for (const p of manifest.parts) {
      const v = await readPartVectors(ctx, e, p.number);
      for (let row = 0; row < v.rows; row++) all[p.offset + row] = rowOf(v, row);
    }
    vectors.set(e, all);
  }
  const sim = (e: EncoderName, a: number, b: number) => vectors.get(e)![a].reduce((s, x, i) => s + x * vectors.get(e)![b][i], 0);

  const pairs = await allPairs(ctx);
  assert.ok(pairs.length >= 100, `${pairs.length} pairs`);
  const keys = pairs.map((p) => `${p.q_id}>${p.t_id}`);
  assert.equal(new Set(keys).size, keys.length, 'no duplicate (query, target) rows');
  const inDegree = new Map<number, number>();
  for (const p of pairs) {
    assert.equal(p.hns[0], p.q_id, 'hns[0] is the query');
    assert.ok(p.hns.length <= hard_negatives);
    assert.ok(!p.hns.includes(p.t_id), 'the target is never a negative');
    assert.equal(
      p.relation,
      relation_priority.find((e) => p.relations.includes(e)),
    );
    assert.ok(Math.abs(sim(p.relation, p.q_id, p.t_id) - p.similarity) < 1e-5);
    assert.ok(p.similarity > band[0] && p.similarity < band[1]);
    // In the pair's space (whose band it is); the colour space gives some images 60 near-duplicates of 150.
    for (const n of p.hns.slice(1)) {
      assert.ok(sim(p.relation, n, p.t_id) < band[1] + 1e-5, `negative ${n} is a near-duplicate of target ${p.t_id} in ${p.relation}`);
      assert.ok(sim(p.relation, n, p.q_id) < band[1] + 1e-5, `negative ${n} is a near-duplicate of query ${p.q_id} in ${p.relation}`);
    }
    inDegree.set(p.t_id, (inDegree.get(p.t_id) ?? 0) + 1);
  }
  assert.ok(Math.max(...inDegree.values()) <= max_pairs_per_target);
  // Both directions are kept by default (the paper), and some pairs are mined both ways.
  assert.ok(keys.some((k) => keys.includes(k.split('>').reverse().join('>'))));
});

test('the summary reports recall, similarity histograms, in-degree and the queries without a pair', async () => {
  const s = { mining: await readMiningSummary(ctx) }; // what summarize() reports as `mining`
  const pairs = await allPairs(ctx);
  for (const e of ENCODER_NAMES) {
    const space = s.mining!.spaces[e];
    assert.equal(space.recall.queries, 150, 'recall_queries above the corpus size: every image');
    assert.ok(space.recall.at_k > 0.9 && space.recall.at_k <= 1);
    assert.ok(space.recall.in_band > 0.9 && space.recall.in_band <= 1);
    assert.equal(space.pairs, pairs.filter((p) => p.relation === e).length);
    assert.equal(
      space.target_similarity.counts.reduce((a, b) => a + b, 0),
      space.pairs,
    );
    assert.equal(
      space.neighbour_similarity.counts.reduce((a, b) => a + b, 0),
      150 * ctx.config.mine.k,
    );
    assert.equal(space.neighbour_similarity.edges.length, space.neighbour_similarity.counts.length + 1);
  }
  const withPair = new Set(pairs.map((p) => p.q_id)).size;
  assert.equal(s.mining!.queries_without_pair, 150 - withPair);
  assert.equal(
    s.mining!.target_in_degree.counts.reduce((a, b) => a + b, 0),
    new Set(pairs.map((p) => p.t_id)).size,
  );
  assert.ok(s.mining!.near_duplicate_clusters >= 1, 'the openmoji slice has near-duplicates (skin tones)');
});

test('a target cap and one direction per pair, from config', async () => {
  const c = createContext(demoConfig(input, tempDir('mine-cap'), { index: { shard_size: 40 }, mine: { max_pairs_per_target: 2, symmetric: false } }));
  await runLocal(c, { progress: quiet, stages: stagesUpTo('select') });
  const pairs = await allPairs(c);
  const inDegree = new Map<number, number>();
  for (const p of pairs) inDegree.set(p.t_id, (inDegree.get(p.t_id) ?? 0) + 1);
  assert.ok(Math.max(...inDegree.values()) <= 2);
  const keys = new Set(pairs.map((p) => `${p.q_id}>${p.t_id}`));
  for (const p of pairs) assert.ok(!keys.has(`${p.t_id}>${p.q_id}`), `${p.q_id}<->${p.t_id} kept both ways`);
  const mining = await readMiningSummary(c);
  assert.ok(mining!.dropped.over_target_cap > 0 && mining!.dropped.reverse_of_kept > 0);
});

test('a shard that cannot fit index.memory_budget_mb is refused when search is planned, with the figure', async () => {
  const tight = { ...ctx, config: { ...ctx.config, index: { ...ctx.config.index, memory_budget_mb: 0.01 } } };
  await assert.rejects(
    new SearchStage().plan(tight),
    /index\.memory_budget_mb: a search unit of visual_semantic shard 0 needs 0\.\d+ MiB .*over the budget of 0\.01 MiB/,
  );
  // Blocks of query parts: one unit per (space, shard, block), each shard loaded once per unit.
  const blocks = { ...ctx, config: { ...ctx.config, mine: { ...ctx.config.mine, query_parts_per_unit: 2 } } };
  const units = await new SearchStage().plan(blocks);
  assert.equal(units.length, 3 * 4 * 2);
  assert.deepEqual(
    units.slice(0, 2).map((u) => u.parts),
    [[0, 1], [2]],
  );
});

/** ctx with its work storage wrapped, counting the catalog parts opened. */
function countingCatalogReads(c: StageContext): { ctx: StageContext; reads: string[] } {
  const reads: string[] = [];
  const work: Storage = Object.create(c.work);
  work.localPath = (key) => (key.startsWith('catalog/') && reads.push(key), c.work.localPath(key));
  work.read = (key) => (key.startsWith('catalog/') && reads.push(key), c.work.read(key));
  return { ctx: { ...c, work }, reads };
}

test('image lookups read each catalog part once per unit, whatever the order of the ids', async () => {
  const direct = new Map<number, CatalogRow>();
  for (const p of (await shared(ctx).manifest()).parts) {
    (await readParquet<CatalogRow>(ctx.work, ctx.layout.catalogPart(p.number), catalogSchema)).forEach((r, i) => direct.set(p.offset + i, r));
  }
  const ids = Rng.for(1, 'lookup').sample([...direct.keys(), ...direct.keys()], 200);
  const { ctx: counted, reads } = countingCatalogReads(ctx);
  const found = await lookupImages(counted, ids);
  assert.deepEqual(
    [...found.keys()].sort((a, b) => a - b),
    [...new Set(ids)].sort((a, b) => a - b),
  );
  for (const [id, row] of found) assert.deepEqual(row, direct.get(id));
  assert.deepEqual(reads.sort(), [0, 1, 2].map((n) => ctx.layout.catalogPart(n)).sort());

  // An annotate unit, then an emit unit (the pairs' images are in every part): each part read once.
  for (const stage of [new AnnotateStage(), new EmitStage()]) {
    const unit = countingCatalogReads(ctx);
    await stage.run(unit.ctx, 1);
    assert.deepEqual(unit.reads.sort(), [0, 1, 2].map((n) => ctx.layout.catalogPart(n)).sort(), stage.name);
  }
});
