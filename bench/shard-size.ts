// What one query costs in one HNSW shard as the shard grows: the figure behind sizing shards (a
// query is searched in every shard, so mining time is queries x shards x this). For each size, one
// shard of clustered 512-d vectors stored shuffled is built with the config's defaults (index.m,
// ef_construction, ef_search); 10k of its own vectors are searched for K+1 neighbours (mine.k), in
// catalog order and in locality order (knn/locality-order.ts), alternated twice. Usage:
//   node --import tsx bench/shard-size.ts [--sizes 12500,50000,200000] [--dim 512] [--queries 10000]
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { parseConfig } from '../src/config/load.ts';
import { buildShard, loadShard } from '../src/knn/hnsw-shard.ts';
import { timeSearchOrders } from './search-order.ts';
import { LocalStorage } from '../src/storage/local.ts';
import { clusteredVectors } from './clustered-vectors.ts';

const { values } = parseArgs({
  options: {
    sizes: { type: 'string', default: '12500,50000,200000' },
    dim: { type: 'string', default: '512' },
    queries: { type: 'string', default: '10000' },
  },
});
const dim = Number(values.dim);
const root = await mkdtemp(path.join(tmpdir(), 'megapairs-bench-shard-size-'));
const storage = new LocalStorage(root);
const defaults = parseConfig({ input: { path: root }, work: root, output: root });
const { m, ef_construction, ef_search } = defaults.index;
const rows: Array<{ n: number; build: number; catalog: number; locality: number }> = [];
for (const n of values.sizes!.split(',').map(Number)) {
  const vectors = clusteredVectors(n, dim, 7, 'shuffled');
  const t0 = performance.now();
  const points = Array.from({ length: n }, (_, id) => ({ id, vector: vectors.subarray(id * dim, (id + 1) * dim) }));
  await buildShard(storage, `${n}.hnsw`, dim, points, n, { m, efConstruction: ef_construction, seed: 1 });
  const build = (performance.now() - t0) / 1000;
  const shard = await loadShard(storage, `${n}.hnsw`, dim, n, ef_search);
  const ms = timeSearchOrders(
    shard,
    vectors,
    dim,
    Array.from({ length: Math.min(n, Number(values.queries)) }, (_, id) => id),
    defaults.mine.k + 1,
  );
  shard.release();
  rows.push({ n, build, ...ms });
  const first = rows[0];
  console.log(
    `${String(n).padStart(8)} vectors (${((n * dim * 4) / 2 ** 20).toFixed(0)} MiB of floats): build ${build.toFixed(1)}s; ms per query: catalog order ${ms.catalog.toFixed(3)}, locality order ${ms.locality.toFixed(3)} (${(ms.catalog / ms.locality).toFixed(2)}x); against ${first.n}: ${(ms.catalog / first.catalog).toFixed(2)}x / ${(ms.locality / first.locality).toFixed(2)}x (log ratio ${(Math.log(n) / Math.log(first.n)).toFixed(2)})`,
  );
}
await rm(root, { recursive: true, force: true });
