// Mining at scale on synthetic CLIP-like vectors: clustered, L2-normalised, nearest-neighbour
// similarities mostly 0.8-0.95. For each corpus size (default 50k and 200k) x 3 spaces, 4 index
// shards: the real index, search, recall, mine and select stages, timed; recall from the recall
// stage; per search unit the shard loads, bytes read and peak RSS; exact brute force timed on a
// sample of queries and scaled to the corpus (a full brute force of 200k x 200k is hours here); and
// what releasing an evicted shard saves; and one shard's queries searched in catalog order against
// locality order, side by side. The corpus is stored in shuffled order, as a real catalog is (its
// order has nothing to do with the embedding space); --order clustered stores each cluster's
// members together, which flatters shards that fit in the CPU caches. --shard-size fixes the
// images per shard (the shard count then grows with the corpus) instead of --shards a corpus;
// --probe-shards P routes each query to its P nearest shards (index.probe_shards), timing the
// partition (its router), assign and route stages (each shard's rows) as part of mining;
// --shard-overlap E also indexes an image near a cell's border in its second nearest shard
// (index.shard_overlap). Usage:
//   node --import tsx bench/mining.ts [--sizes 50000,200000] [--dim 512] [--shards 4 | --shard-size N] [--probe-shards P] [--shard-overlap E] [--concurrency 2] [--order shuffled|clustered] [--no-serial-index]
import { stat } from 'node:fs/promises';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { encodeNpy } from '../src/artifacts/npy.ts';
import { parseConfig } from '../src/config/load.ts';
import { ENCODER_NAMES } from '../src/config/schema.ts';
import { ExactTopK } from '../src/knn/exact.ts';
import { loadShard } from '../src/knn/hnsw-shard.ts';
import { pipelineStages } from '../src/pipeline.ts';
import { createContext } from '../src/runner/context.ts';
import { runStage } from '../src/runner/local.ts';
import { UnitThreads } from '../src/runner/threads/unit-threads.ts';
import { ProgressReporter } from '../src/runner/progress.ts';
import { readPartVectors } from '../src/stages/embeddings.ts';
import { IndexStage } from '../src/stages/index-build.ts';
import type { CatalogManifest } from '../src/stages/manifest.ts';
import { MineStage } from '../src/stages/mine.ts';
import { PartitionStage } from '../src/stages/partition.ts';
import { AssignStage } from '../src/stages/assign.ts';
import { RouteStage } from '../src/stages/route.ts';
import { readMiningSummary } from '../src/stages/mining-stats.ts';
import { RecallStage } from '../src/stages/recall.ts';
import { SearchStage, searchUnitBytes, type SearchUnit } from '../src/stages/search.ts';
import { SelectStage } from '../src/stages/select.ts';
import { clusteredVectors } from './clustered-vectors.ts';
import { timeSearchOrders } from './search-order.ts';
import type { StageContext } from '../src/core/stage.ts';
import type { Storage } from '../src/storage/storage.ts';
import { shared } from '../src/stages/shared-resources.ts';

const { values } = parseArgs({
  options: {
    sizes: { type: 'string', default: '50000,200000' },
    dim: { type: 'string', default: '512' },
    shards: { type: 'string', default: '4' },
    'shard-size': { type: 'string' },
    'probe-shards': { type: 'string', default: '0' },
    'shard-overlap': { type: 'string', default: '0' },
    part: { type: 'string', default: '10000' },
    concurrency: { type: 'string', default: '2' },
    'exact-sample': { type: 'string', default: '100' },
    order: { type: 'string', default: 'shuffled' },
    'no-serial-index': { type: 'boolean', default: false },
  },
});
if (values.order !== 'shuffled' && values.order !== 'clustered') throw new Error(`--order: ${values.order} is neither shuffled nor clustered`);
const order: 'shuffled' | 'clustered' = values.order;
const dim = Number(values.dim);
const PART = Number(values.part);
const MiB = 1024 * 1024;
const quiet = new ProgressReporter(process.stderr, true);

/** A Storage that counts reads and bytes (whole reads and local files opened, e.g. index shards). */
function counting(inner: Storage) {
  const c = { reads: 0, bytes: 0, shardLoads: 0, shardBytes: 0 };
  const storage: Storage = Object.create(inner);
  storage.read = async (key) => {
    const b = await inner.read(key);
    c.reads++;
    c.bytes += b.length;
    return b;
  };
  storage.localPath = async (key) => {
    const p = await inner.localPath(key);
    const size = (await stat(p)).size;
    c.reads++;
    c.bytes += size;
    if (key.endsWith('.hnsw')) c.shardLoads++, (c.shardBytes += size);
    return p;
  };
  return { storage, c };
}

async function corpus(n: number): Promise<{ ctx: StageContext; root: string; vectors: Float32Array[] }> {
  const root = await mkdtemp(path.join(tmpdir(), 'megapairs-bench-mining-'));
  const config = parseConfig({
    run: { name: 'bench-mining', seed: 1 },
    input: { path: root },
    work: path.join(root, 'work'),
    output: path.join(root, 'output'),
    index: {
      shard_size: values['shard-size'] ? Number(values['shard-size']) : Math.ceil(n / Number(values.shards)),
      probe_shards: Number(values['probe-shards']),
      shard_overlap: Number(values['shard-overlap']),
    },
    runner: { concurrency: Number(values.concurrency) },
  });
  // Synthetic vectors stand in for the catalog and embeddings, so the keys are fixed by hand.
  const ctx = createContext(config, Object.fromEntries(pipelineStages().map((s) => [s.name, 'bench'])));
  const manifest: CatalogManifest = { total: n, parts: [] };
  for (let p = 0; p * PART < n; p++) manifest.parts.push({ number: p, rows: Math.min(PART, n - p * PART), offset: p * PART });
  const vectors = ENCODER_NAMES.map((_, s) => clusteredVectors(n, dim, 100 + s, order));
  for (const p of manifest.parts) {
    for (const [s, e] of ENCODER_NAMES.entries()) {
      await ctx.work.write(ctx.layout.embeddingPart(e, p.number), encodeNpy(vectors[s].slice(p.offset * dim, (p.offset + p.rows) * dim), [p.rows, dim]));
    }
    await ctx.work.write(ctx.layout.embeddingMask(p.number), encodeNpy(new Uint8Array(p.rows).fill(1), [p.rows]));
  }
  await ctx.work.write(ctx.layout.catalogManifest(), JSON.stringify(manifest));
  return { ctx, root, vectors };
}

const rss = () => process.memoryUsage.rss() / MiB;

/** ms per query for part 0's queries in shard 0 of the first space, in catalog order and in locality order. */
async function searchOrderAB(ctx: StageContext): Promise<{ catalog: number; locality: number }> {
  const encoder = ENCODER_NAMES[0];
  const meta = await shared(ctx).shardMeta({ encoder, shard: 0 });
  const shard = await loadShard(ctx.work, ctx.layout.indexShard(encoder, 0), meta.dim, meta.count, ctx.config.index.ef_search);
  const queries = await readPartVectors(ctx, encoder, 0);
  const ms = timeSearchOrders(
    shard,
    queries.data,
    queries.dim,
    Array.from({ length: queries.rows }, (_, row) => row),
    ctx.config.mine.k + 1,
  );
  shard.release();
  return ms;
}

async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; seconds: number }> {
  const t = performance.now();
  const value = await fn();
  return { value, seconds: (performance.now() - t) / 1000 };
}

async function benchSize(n: number) {
  const { ctx, root, vectors } = await corpus(n);
  const partition = await timed(async () => {
    await runStage(ctx, new PartitionStage(), ctx.config.runner.concurrency, quiet);
    const scatter = new UnitThreads(ctx.config, ctx.config.runner.concurrency);
    await runStage(ctx, new AssignStage(), ctx.config.runner.concurrency, quiet, scatter);
    await runStage(ctx, new RouteStage(), ctx.config.runner.concurrency, quiet, scatter);
    await scatter.close();
  });
  // The index built twice side by side: one unit at a time in-process, then in unit threads.
  const serial = values['no-serial-index'] ? { seconds: Number.NaN } : await timed(() => runStage(ctx, new IndexStage(), 1, quiet));
  await rm(path.join(root, 'work', 'index'), { recursive: true, force: true });
  const threads = new UnitThreads(ctx.config, ctx.config.runner.concurrency);
  const index = await timed(() => runStage(ctx, new IndexStage(), ctx.config.runner.concurrency, quiet, threads));
  await threads.close();
  let indexed = 0;
  for (const u of await new IndexStage().plan(ctx)) if (u.encoder === ENCODER_NAMES[0]) indexed += (await shared(ctx).shardMeta(u)).count;

  // Search, unit by unit, so reads and memory are attributed to each unit.
  const search = new SearchStage();
  const units = await search.plan(ctx);
  const perUnit: Array<{
    unit: string;
    seconds: number;
    shardLoads: number;
    shardMiB: number;
    readMiB: number;
    peakRssMiB: number;
    estimateMiB: number;
    budgetMiB: number;
  }> = [];
  const searchStart = performance.now();
  for (const u of units as SearchUnit[]) {
    const { storage, c } = counting(ctx.work);
    let peak = rss();
    const timer = setInterval(() => (peak = Math.max(peak, rss())), 5);
    const t = await timed(() => search.run({ ...ctx, work: storage }, u));
    clearInterval(timer);
    peak = Math.max(peak, rss());
    const meta = await shared(ctx).shardMeta(u);
    const largest = Math.max(...(await shared(ctx).manifest()).parts.map((p) => p.rows));
    perUnit.push({
      unit: search.unitId(u),
      seconds: t.seconds,
      shardLoads: c.shardLoads,
      shardMiB: c.shardBytes / MiB,
      readMiB: c.bytes / MiB,
      peakRssMiB: peak,
      estimateMiB: searchUnitBytes(meta, largest, dim, ctx.config.mine.k) / MiB,
      budgetMiB: ctx.config.index.memory_budget_mb,
    });
  }
  const searchSeconds = (performance.now() - searchStart) / 1000;
  const searchOrder = await searchOrderAB(ctx);
  const mine = await timed(() => runStage(ctx, new MineStage(), ctx.config.runner.concurrency, quiet));
  const select = await timed(() => runStage(ctx, new SelectStage(), 1, quiet));
  const recall = await timed(() => runStage(ctx, new RecallStage(), ctx.config.runner.concurrency, quiet));
  const summary = await readMiningSummary(ctx);

  // Exact brute force, on a sample of queries in one space, scaled to every query of all 3 spaces.
  const sample = Number(values['exact-sample']);
  const queries = Array.from({ length: sample }, (_, i) => vectors[0].slice(i * dim, (i + 1) * dim));
  const exact = new ExactTopK(queries, ctx.config.mine.k + 1);
  const bf = await timed(async () => {
    for (let id = 0; id < n; id++) exact.add(id, vectors[0].subarray(id * dim, (id + 1) * dim));
  });
  const bruteForceSeconds = (bf.seconds / sample) * n * ENCODER_NAMES.length;

  // Releasing a shard: load one shard 3 times, with and without release().
  const meta = await shared(ctx).shardMeta({ encoder: ENCODER_NAMES[0], shard: 0 });
  const growth = async (release: boolean) => {
    const start = rss();
    const held = [];
    for (let i = 0; i < 3; i++) {
      const s = await loadShard(ctx.work, ctx.layout.indexShard(ENCODER_NAMES[0], 0), meta.dim, meta.count, 128);
      if (release) s.release();
      else held.push(s);
    }
    const grew = rss() - start;
    held.forEach((s) => s.release());
    return grew;
  };
  const released = await growth(true);
  const kept = await growth(false);

  await rm(root, { recursive: true, force: true });
  return {
    n,
    serialIndex: serial.seconds,
    index: index.seconds,
    searchSeconds,
    partition: partition.seconds,
    shards: new Set((units as SearchUnit[]).map((u) => u.shard)).size,
    mine: mine.seconds,
    select: select.seconds,
    recall: recall.seconds,
    perUnit,
    summary,
    bruteForceSeconds,
    bfPerQuery: bf.seconds / sample,
    released,
    kept,
    shardMiB: perUnit[0].shardMiB,
    searchOrder,
    shardSize: meta.count,
    indexedPerImage: indexed / n,
  };
}

const results: Array<Awaited<ReturnType<typeof benchSize>>> = [];
for (const n of values.sizes!.split(',').map(Number)) {
  const r = await benchSize(n);
  results.push(r);
  const mining = r.partition + r.searchSeconds + r.mine + r.select;
  const probes = Number(values['probe-shards']);
  console.log(
    `\n== ${n} vectors x ${ENCODER_NAMES.length} spaces, ${dim}-d, ${r.shards} shards per space, ${probes ? `each query searched in its ${probes} nearest${Number(values['shard-overlap']) > 0 ? `, border images in 2 (overlap ${values['shard-overlap']})` : ''}` : 'every query searched in every shard'}, parts of ${PART}, stored ${values.order}, node ${process.version}`,
  );
  console.log(
    `index build (${r.indexedPerImage.toFixed(3)} shard entries per image): ${values['no-serial-index'] ? 'one unit at a time skipped' : `${r.serialIndex.toFixed(1)}s one unit at a time`}, ${r.index.toFixed(1)}s in ${values.concurrency} unit threads${values['no-serial-index'] ? '' : ` (${(r.serialIndex / r.index).toFixed(2)}x)`}; mining: ${probes ? `partition, assign and route ${r.partition.toFixed(1)}s + ` : ''}search ${r.searchSeconds.toFixed(1)}s + mine ${r.mine.toFixed(1)}s + select ${r.select.toFixed(1)}s = ${mining.toFixed(1)}s; recall stage ${r.recall.toFixed(1)}s`,
  );
  console.log(
    `exact brute force: ${(r.bfPerQuery * 1000).toFixed(2)} ms per query per space (measured on ${values['exact-sample']}), so ${r.bruteForceSeconds.toFixed(0)}s for all -> mining is ${(r.bruteForceSeconds / mining).toFixed(1)}x faster`,
  );
  for (const e of ENCODER_NAMES) {
    const s = r.summary!.spaces[e];
    const h = s.neighbour_similarity;
    const share = h.counts.filter((_, i) => h.edges[i] >= 0.8 && h.edges[i + 1] <= 0.95).reduce((x, y) => x + y, 0) / h.counts.reduce((x, y) => x + y, 0);
    console.log(
      `  ${e.padEnd(16)} ${(100 * share).toFixed(0)}% of neighbours at 0.80-0.95; recall@${s.recall.k} ${s.recall.at_k.toFixed(4)}, in-band ${s.recall.in_band.toFixed(4)} (${s.recall.in_band_neighbours} in-band neighbours of ${s.recall.queries} queries); pairs ${s.pairs}`,
    );
  }
  console.log(
    `  target in-degree max ${r.summary!.target_in_degree.max}, mean ${r.summary!.target_in_degree.mean.toFixed(2)}; queries without pair ${r.summary!.queries_without_pair}; merged ${r.summary!.duplicate_pairs_merged}; near-duplicate clusters ${r.summary!.near_duplicate_clusters}`,
  );
  const vectorsRead = r.perUnit.reduce((a, u) => a + u.readMiB - u.shardMiB, 0);
  const embeddings = (n * dim * 4 * ENCODER_NAMES.length) / MiB;
  console.log(
    `  search units read ${vectorsRead.toFixed(0)} MiB besides their shards: ${(vectorsRead / embeddings).toFixed(2)}x the embeddings (${embeddings.toFixed(0)} MiB)`,
  );
  console.log(
    '  search unit                                          seconds  shard loads  shard MiB  read MiB  process RSS MiB  unit estimate MiB  budget MiB',
  );
  for (const u of r.perUnit) {
    console.log(
      `  ${u.unit.padEnd(52)} ${u.seconds.toFixed(1).padStart(7)} ${String(u.shardLoads).padStart(12)} ${u.shardMiB.toFixed(1).padStart(10)} ${u.readMiB.toFixed(1).padStart(9)} ${u.peakRssMiB.toFixed(0).padStart(16)} ${u.estimateMiB.toFixed(1).padStart(18)} ${String(u.budgetMiB).padStart(11)}`,
    );
  }
  console.log(
    `  one ${r.shardSize}-vector shard, ${PART} queries: ${r.searchOrder.catalog.toFixed(3)} ms per query in catalog order, ${r.searchOrder.locality.toFixed(3)} in locality order (${(r.searchOrder.catalog / r.searchOrder.locality).toFixed(2)}x)`,
  );
  console.log(
    `  loading a ${r.shardMiB.toFixed(0)} MiB shard 3 times: RSS +${r.kept.toFixed(0)} MiB when kept, +${r.released.toFixed(0)} MiB when released after each load`,
  );
}
if (results.length > 1) {
  const [a, b] = [results[0], results[results.length - 1]];
  const m = (r: (typeof results)[number]) => r.partition + r.searchSeconds + r.mine + r.select;
  console.log(
    `\nscaling ${a.n} -> ${b.n} (${(b.n / a.n).toFixed(1)}x the vectors): mining ${(m(b) / m(a)).toFixed(2)}x the time, index build ${(b.index / a.index).toFixed(2)}x`,
  );
}
