// Mining with routed shards (index.probe_shards > 0) on the demo slice: every image is indexed in
// exactly its home shard, a query is searched in its probe_shards nearest shards and no other, the
// merge gives the neighbours of searching those shards directly, and recall is measured the same
// way. Changing probe_shards searches again but keeps the routers and the shards.
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { decodeNpy } from '../src/artifacts/npy.ts';
import { ENCODER_NAMES } from '../src/config/schema.ts';
import { loadShard, mergeTopK, type LoadedShard } from '../src/knn/hnsw-shard.ts';
import { createContext } from '../src/runner/context.ts';
import { runLocal } from '../src/runner/local.ts';
import { ProgressReporter } from '../src/runner/progress.ts';
import { readPartVectors, rowOf } from '../src/stages/embeddings.ts';
import { shardCount } from '../src/stages/index-build.ts';
import { partNeighbours } from '../src/stages/mine.ts';
import { readMiningSummary } from '../src/stages/mining-stats.ts';
import { readRouter } from '../src/stages/partition.ts';
import type { StageContext } from '../src/stages/stage.ts';
import { demoConfig, sampleSlice, stagesUpTo, tempDir } from './helpers.ts';

const quiet = new ProgressReporter(process.stderr, true);
let input: string;
let root: string;
let ctx: StageContext;
const PROBES = 2;

before(async () => {
  input = await sampleSlice();
  root = tempDir('routed');
  // 40 images per shard: 4 shards per space over the 150 images, each query searched in 2.
  ctx = createContext(demoConfig(input, root, { index: { shard_size: 40, probe_shards: PROBES } }));
  await runLocal(ctx, { progress: quiet, stages: stagesUpTo('select') });
});

test('each image is indexed once, in its home shard; a query is searched only in its nearest shards, and the merge is theirs', async () => {
  const manifest = await ctx.shared.manifest();
  const { k } = ctx.config.mine;
  const shards = shardCount(manifest, 40);
  assert.equal(shards, 4);
  for (const encoder of ENCODER_NAMES) {
    const router = await readRouter(ctx, encoder);
    assert.equal(router.shards, shards);
    const loaded: LoadedShard[] = [];
    let indexed = 0;
    for (let s = 0; s < shards; s++) {
      const meta = await ctx.shared.shardMeta({ encoder, shard: s });
      indexed += meta.count;
      loaded.push(await loadShard(ctx.work, ctx.layout.indexShard(encoder, s), meta.dim, meta.count, ctx.config.index.ef_search));
    }
    let embedded = 0;
    for (const p of manifest.parts) {
      const v = await readPartVectors(ctx, encoder, p.number);
      const merged = await partNeighbours(ctx, encoder, p.number);
      const partial: Array<ReturnType<typeof decodeNpy>> = [];
      for (let s = 0; s < shards; s++) {
        const key = ctx.layout.searchIds(encoder, s, p.number);
        partial.push(decodeNpy(await ctx.work.read(key), key));
      }
      for (let row = 0; row < v.rows; row++) {
        if (!v.mask[row]) continue;
        embedded++;
        const id = p.offset + row;
        const q = rowOf(v, row);
        const route = router.route(q, PROBES);
        const home = loaded[router.home(q)].search(q, 1);
        assert.equal(home[0]?.id, id, `${encoder} image ${id} is in its home shard`);
        for (let s = 0; s < shards; s++) {
          const searched = partial[s].data[row * (k + 1)] >= 0;
          assert.equal(searched, route.includes(s), `${encoder} image ${id} searched in shard ${s}: route ${route}`);
        }
        const direct = mergeTopK(
          route.map((s) => loaded[s].search(q, k + 1)),
          k + 1,
        )
          .filter((nb) => nb.id !== id)
          .slice(0, k);
        assert.deepEqual(merged[row], direct, `${encoder} image ${id}`);
      }
    }
    assert.equal(indexed, embedded, `${encoder}: every embedded image in exactly one shard`);
    loaded.forEach((s) => s.release());
  }
  const summary = (await readMiningSummary(ctx))!;
  for (const e of ENCODER_NAMES) {
    const r = summary.spaces[e].recall;
    assert.ok(r.queries > 0 && r.at_k > 0.5 && r.at_k <= 1, `${e} recall ${JSON.stringify(r)}`);
  }
});

test('probe_shards changed: search, recall and what follows recompute; the routers and the shards are reused', async () => {
  const wider = createContext(demoConfig(input, root, { index: { shard_size: 40, probe_shards: 4 } }));
  const reports = new Map((await runLocal(wider, { progress: quiet, stages: stagesUpTo('select') })).map((r) => [r.stage, r.status]));
  for (const s of ['catalog', 'manifest', 'embed', 'partition', 'index']) assert.equal(reports.get(s), 'reused', s);
  for (const s of ['search', 'recall', 'mine', 'select']) assert.equal(reports.get(s), 'computed', s);
  // Every shard probed: the exact-search recall can only rise.
  const [narrow, wide] = [(await readMiningSummary(ctx))!, (await readMiningSummary(wider))!];
  for (const e of ENCODER_NAMES) assert.ok(wide.spaces[e].recall.at_k >= narrow.spaces[e].recall.at_k, e);
});
