// Mining with routed shards (index.probe_shards > 0) on the demo slice: every image is indexed in
// exactly its home shard, a query is searched in its probe_shards nearest shards and no other, the
// merge gives the neighbours of searching those shards directly, and recall is measured the same
// way. Changing probe_shards searches again but keeps the routers and the shards; a shard_overlap
// indexes the images near a border in two shards, found once.
import assert from 'node:assert/strict';
import { before, test } from 'node:test';
import { decodeNpy } from '../src/artifacts/npy.ts';
import { ENCODER_NAMES } from '../src/config/schema.ts';
import { loadShard, mergeTopK, type LoadedShard } from '../src/knn/hnsw-shard.ts';
import { createContext } from '../src/runner/context.ts';
import { runLocal } from '../src/runner/local.ts';
import { ProgressReporter } from '../src/runner/progress.ts';
import { readPartVectors, rowOf } from '../src/stages/embeddings.ts';
import { IndexStage } from '../src/stages/index-build.ts';
import { shardCount } from '../src/stages/shard-plan.ts';
import { SearchStage } from '../src/stages/search.ts';
import type { Storage } from '../src/storage/storage.ts';
import { partNeighbours } from '../src/stages/mine.ts';
import { readMiningSummary } from '../src/stages/mining-stats.ts';
import type { StageContext } from '../src/core/stage.ts';
import { demoConfig, sampleSlice, stagesUpTo, tempDir } from './helpers.ts';
import { shared } from '../src/stages/shared-resources.ts';

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
  const manifest = await shared(ctx).manifest();
  const { k } = ctx.config.mine;
  const shards = shardCount(manifest, 40);
  assert.equal(shards, 4);
  for (const encoder of ENCODER_NAMES) {
    const router = await shared(ctx).shardRouter(encoder);
    assert.equal(router.shards, shards);
    const loaded: LoadedShard[] = [];
    let indexed = 0;
    for (let s = 0; s < shards; s++) {
      const meta = await shared(ctx).shardMeta({ encoder, shard: s });
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

test('an index unit reads only its members of each part, a search unit only the queries routed to its shard: no part is read whole', async () => {
  const manifest = await shared(ctx).manifest();
  const encoder = ENCODER_NAMES[1];
  const shard = 2;
  const watched = () => {
    const reads: string[] = [];
    const work: Storage = Object.create(ctx.work);
    work.read = (key) => (reads.push(key), ctx.work.read(key));
    work.localPath = (key) => (reads.push(key), ctx.work.localPath(key));
    // Search skips a part whose lists exist: here they are made again (the same bytes).
    work.exists = async (key) => !key.startsWith(ctx.layout.stageFolder('search')) && ctx.work.exists(key);
    return { reads, spied: { ...ctx, work } };
  };
  const rowFiles = (keys: (n: number) => { rows: string; vectors: string }) =>
    manifest.parts.flatMap((p) => [keys(p.number).rows, keys(p.number).vectors]).sort();

  const index = watched();
  await new IndexStage().run(index.spied, { encoder, shard });
  assert.deepEqual(
    [...index.reads].sort(),
    rowFiles((n) => ctx.layout.shardMembers(encoder, shard, n)),
  );

  const search = watched();
  await new SearchStage().run(search.spied, { encoder, shard, parts: manifest.parts.map((p) => p.number) });
  const expected = [...rowFiles((n) => ctx.layout.shardQueries(encoder, shard, n)), ctx.layout.indexShard(encoder, shard)].sort();
  assert.deepEqual(search.reads.filter((k) => !k.endsWith('.json')).sort(), expected);
});

test('probe_shards changed: search, recall and what follows recompute; the routers and the shards are reused', async () => {
  const wider = createContext(demoConfig(input, root, { index: { shard_size: 40, probe_shards: 4 } }));
  const reports = new Map((await runLocal(wider, { progress: quiet, stages: stagesUpTo('select') })).map((r) => [r.stage, r.status]));
  for (const s of ['catalog', 'manifest', 'embed', 'partition', 'assign', 'index']) assert.equal(reports.get(s), 'reused', s);
  for (const s of ['route', 'search', 'recall', 'mine', 'select']) assert.equal(reports.get(s), 'computed', s);
  // Every shard probed: the exact-search recall can only rise.
  const [narrow, wide] = [(await readMiningSummary(ctx))!, (await readMiningSummary(wider))!];
  for (const e of ENCODER_NAMES) assert.ok(wide.spaces[e].recall.at_k >= narrow.spaces[e].recall.at_k, e);
});

test('shard_overlap: images near a border are indexed in their two nearest shards, found once, and recall can only rise', async () => {
  const overlap = 0.05;
  const config = { index: { shard_size: 40, probe_shards: PROBES, shard_overlap: overlap } };
  const replicated = createContext(demoConfig(input, root, config));
  const reports = new Map((await runLocal(replicated, { progress: quiet, stages: stagesUpTo('select') })).map((r) => [r.stage, r.status]));
  for (const s of ['catalog', 'manifest', 'embed', 'partition', 'route']) assert.equal(reports.get(s), 'reused', s);
  for (const s of ['assign', 'index', 'search', 'recall', 'mine', 'select']) assert.equal(reports.get(s), 'computed', s);
  const manifest = await shared(replicated).manifest();
  const { k } = replicated.config.mine;
  for (const encoder of ENCODER_NAMES) {
    const router = await shared(replicated).shardRouter(encoder);
    const members: number[][] = Array.from({ length: router.shards }, () => []);
    const vectors = new Map<number, Float32Array>();
    for (const p of manifest.parts) {
      const v = await readPartVectors(replicated, encoder, p.number);
      for (let row = 0; row < v.rows; row++) {
        if (!v.mask[row]) continue;
        vectors.set(p.offset + row, rowOf(v, row).slice());
        for (const s of router.homes(rowOf(v, row), overlap)) members[s].push(p.offset + row);
      }
    }
    assert.ok(members.flat().length > vectors.size, `${encoder}: some images are in two shards`);
    for (let s = 0; s < router.shards; s++) {
      const meta = await shared(replicated).shardMeta({ encoder, shard: s });
      assert.equal(meta.count, members[s].length, `${encoder} shard ${s} holds its homes and its border's replicas`);
      const shard = await loadShard(replicated.work, replicated.layout.indexShard(encoder, s), meta.dim, meta.count, replicated.config.index.ef_search);
      for (const id of members[s]) assert.equal(shard.search(vectors.get(id)!, 1)[0].id, id, `${encoder} image ${id} in shard ${s}`);
      shard.release();
    }
    for (const p of manifest.parts) {
      for (const list of await partNeighbours(replicated, encoder, p.number)) {
        assert.equal(new Set(list.map((nb) => nb.id)).size, list.length, `${encoder}: a neighbour found in two shards is listed once`);
        assert.ok(list.length <= k);
      }
    }
  }
  const [alone, overlapped] = [(await readMiningSummary(ctx))!, (await readMiningSummary(replicated))!];
  for (const e of ENCODER_NAMES) assert.ok(overlapped.spaces[e].recall.at_k >= alone.spaces[e].recall.at_k, e);
});
