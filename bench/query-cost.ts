// Why one query costs more in a larger shard, and what huge pages and a CPU-specific build of
// hnswlib save. For each size, one shard of clustered 512-d vectors stored shuffled is built with
// the config's defaults and searched by 10k of its own vectors for K+1, in locality order as search
// does. Measured:
// - work: hnswlib's own counters of distance computations and graph hops per query. searchKnn
//   leaves them off, so bench/hnsw-work.cc is compiled against a copy of hnswlib-node's headers
//   with them on, with the addon's flags (skipped without g++);
// - ms per query in Node children, alternated, the same shard and queries:
//   - 4 KiB pages: as a run is started today;
//   - huge pages: GLIBC_TUNABLES=glibc.malloc.hugetlb=1 at process start makes glibc (2.35+) ask
//     for transparent huge pages for malloc's large blocks, hnswlib's graph among them (Linux, with
//     transparent_hugepage at madvise or always). Each distance computation lands on a node
//     somewhere in hundreds of MiB, so with 4 KiB pages nearly each costs a TLB miss;
//   - native build: hnswlib-node rebuilt with CXXFLAGS=-march=native (its own build uses SSE only),
//     with huge pages; it also counts the queries whose top K+1 differ from the portable build's.
//   Each child reports the huge pages it held (AnonHugePages), to show the tunable took effect.
// Usage:
//   node --import tsx bench/query-cost.ts [--sizes 50000,200000] [--queries 10000] [--reps 2]
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type hnswlib from 'hnswlib-node';
import { parseConfig } from '../src/config/load.ts';
import { buildShard, LoadedShard, loadShard } from '../src/knn/hnsw-shard.ts';
import { localityOrder } from '../src/knn/locality-order.ts';
import { LocalStorage } from '../src/storage/local.ts';
import { clusteredVectors } from './clustered-vectors.ts';

const HUGE_PAGES = 'glibc.malloc.hugetlb=1';
const { values } = parseArgs({
  options: {
    sizes: { type: 'string', default: '50000,200000' },
    dim: { type: 'string', default: '512' },
    queries: { type: 'string', default: '10000' },
    reps: { type: 'string', default: '2' },
    child: { type: 'string' }, // a shard's folder: search it, print one JSON line
    addon: { type: 'string' }, // the child's hnswlib-node (default: the installed one)
    found: { type: 'string' }, // where the child writes the neighbour lists it found (to compare builds)
  },
});
const dim = Number(values.dim);
const defaults = parseConfig({ input: { path: '.' }, work: '.', output: '.' });
const k = defaults.mine.k + 1;

if (values.child) {
  const dir = values.child;
  const { n } = JSON.parse(readFileSync(path.join(dir, 'shard.json'), 'utf8')) as { n: number };
  const queries = new Float32Array(readFileSync(path.join(dir, 'queries.f32')).buffer.slice(0));
  let shard: LoadedShard;
  if (values.addon) {
    const { HierarchicalNSW } = createRequire(import.meta.url)(values.addon) as typeof hnswlib;
    const index = new HierarchicalNSW('ip', dim);
    index.readIndexSync(path.join(dir, 'shard.hnsw'));
    index.setEf(defaults.index.ef_search);
    shard = new LoadedShard(index, n);
  } else {
    shard = await loadShard(new LocalStorage(dir), 'shard.hnsw', dim, n, defaults.index.ef_search);
  }
  const count = queries.length / dim;
  const row = (q: number) => queries.subarray(q * dim, (q + 1) * dim);
  for (let q = 0; q < Math.min(count, 1000); q++) shard.knn(row(q), k); // warm-up
  const t = performance.now();
  const found: number[][] = [];
  for (let q = 0; q < count; q++) found.push(shard.knn(row(q), k).neighbors);
  const ms = (performance.now() - t) / count;
  if (values.found) writeFileSync(values.found, JSON.stringify(found));
  const huge = /AnonHugePages:\s+(\d+) kB/.exec(readFileSync('/proc/self/smaps_rollup', 'utf8'));
  console.log(JSON.stringify({ ms, hugeMiB: huge ? Number(huge[1]) / 1024 : 0 }));
  process.exit(0);
}

const root = await mkdtemp(path.join(tmpdir(), 'megapairs-bench-query-cost-'));
const hnswlibDir = path.join(import.meta.dirname, '../node_modules/hnswlib-node');
const haveGxx = spawnSync('g++', ['--version']).status === 0;

/** bench/hnsw-work.cc built with the addon's own flags (hnswlib-node/build/addon.target.mk: -O3 -m64, no -march), counters on. */
function buildWorkCounter(): string {
  const headers = path.join(root, 'include');
  cpSync(path.join(hnswlibDir, 'src/hnswlib'), path.join(headers, 'hnswlib'), { recursive: true });
  const alg = path.join(headers, 'hnswlib/hnswalg.h');
  const text = readFileSync(alg, 'utf8');
  const counted = text.replace('bool collect_metrics = false', 'bool collect_metrics = true');
  if (counted === text) throw new Error(`${alg}: no 'bool collect_metrics = false' to turn on (hnswlib-node's headers changed)`);
  writeFileSync(alg, counted);
  const out = path.join(root, 'hnsw-work');
  execFileSync('g++', ['-O3', '-m64', '-std=gnu++17', '-I', headers, '-o', out, path.join(import.meta.dirname, 'hnsw-work.cc'), '-pthread']);
  return out;
}

/** A copy of hnswlib-node rebuilt for this CPU. It sits inside node_modules so that its own dependencies resolve. */
function buildNativeAddon(): string {
  const copy = path.join(hnswlibDir, '../.cache/megapairs-bench-hnswlib-native');
  cpSync(hnswlibDir, copy, { recursive: true, filter: (from) => path.relative(hnswlibDir, from).split(path.sep)[0] !== 'build' });
  execFileSync('npx', ['--yes', 'node-gyp', 'rebuild'], { cwd: copy, env: { ...process.env, CXXFLAGS: '-march=native' }, stdio: 'ignore' });
  return copy;
}

const counter = haveGxx ? buildWorkCounter() : undefined;
const nativeAddon = haveGxx ? buildNativeAddon() : undefined;
console.log(
  `node ${process.version}; transparent_hugepage: ${readFileSync('/sys/kernel/mm/transparent_hugepage/enabled', 'utf8').trim()}${haveGxx ? '' : '; no g++: work not counted, no native build'}`,
);

type Setup = 'small pages' | 'huge pages' | 'native build';
const rows: Array<{ n: number; ms: Record<Setup, number>; distances?: number }> = [];
for (const n of values.sizes!.split(',').map(Number)) {
  const dir = path.join(root, String(n));
  const vectors = clusteredVectors(n, dim, 7, 'shuffled');
  const points = Array.from({ length: n }, (_, id) => ({ id, vector: vectors.subarray(id * dim, (id + 1) * dim) }));
  const { m, ef_construction } = defaults.index;
  await buildShard(new LocalStorage(dir), 'shard.hnsw', dim, points, n, { m, efConstruction: ef_construction, seed: 1 });
  const order = localityOrder(
    vectors,
    dim,
    Array.from({ length: Math.min(n, Number(values.queries)) }, (_, i) => i),
    1,
  );
  const queries = new Float32Array(order.length * dim);
  order.forEach((r, i) => queries.set(vectors.subarray(r * dim, (r + 1) * dim), i * dim));
  writeFileSync(path.join(dir, 'queries.f32'), queries);
  writeFileSync(path.join(dir, 'shard.json'), JSON.stringify({ n }));

  const setups: Array<[Setup, string, string | undefined]> = [
    ['small pages', '', undefined],
    ['huge pages', HUGE_PAGES, undefined],
    ...(nativeAddon ? [['native build', HUGE_PAGES, nativeAddon] as [Setup, string, string]] : []),
  ];
  const ms: Record<Setup, number> = { 'small pages': 0, 'huge pages': 0, 'native build': 0 };
  const foundBy = (setup: Setup) => path.join(dir, `found-${setup.replace(' ', '-')}.json`);
  const hugeMiB: Record<string, number> = {};
  for (let rep = 0; rep < Number(values.reps); rep++) {
    for (const [setup, tunables, addon] of setups) {
      const args = [...process.execArgv, import.meta.filename, '--child', dir, '--dim', String(dim), ...(addon ? ['--addon', addon] : [])];
      if (rep === 0 && setup !== 'small pages') args.push('--found', foundBy(setup)); // the builds compared, both with huge pages
      const out = execFileSync(process.execPath, args, { env: { ...process.env, GLIBC_TUNABLES: tunables }, encoding: 'utf8' });
      const result = JSON.parse(out.trim().split('\n').pop()!) as { ms: number; hugeMiB: number };
      ms[setup] += result.ms / Number(values.reps);
      hugeMiB[setup] = result.hugeMiB;
    }
  }
  let work = '';
  let distances: number | undefined;
  if (counter) {
    const w = JSON.parse(
      execFileSync(counter, [path.join(dir, 'shard.hnsw'), String(dim), path.join(dir, 'queries.f32'), String(k), String(defaults.index.ef_search)], {
        encoding: 'utf8',
      }),
    ) as { distances: number; hops: number };
    distances = w.distances;
    work = `${w.distances.toFixed(0)} distance computations, ${w.hops.toFixed(0)} hops per query; `;
  }
  let differ = '';
  if (nativeAddon) {
    const portable = JSON.parse(readFileSync(foundBy('huge pages'), 'utf8')) as number[][];
    const native = JSON.parse(readFileSync(foundBy('native build'), 'utf8')) as number[][];
    differ = `; ${portable.filter((list, q) => list.join() !== native[q].join()).length} of ${portable.length} top-${k} lists differ from the portable build's`;
  }
  rows.push({ n, ms, distances });
  const first = rows[0];
  const growth = (setup: Setup) => (ms[setup] / first.ms[setup]).toFixed(2);
  console.log(
    `${String(n).padStart(8)} vectors: ${work}ms per query: ${ms['small pages'].toFixed(3)} small pages, ${ms['huge pages'].toFixed(3)} huge pages (${(ms['small pages'] / ms['huge pages']).toFixed(2)}x), ` +
      `${nativeAddon ? `${ms['native build'].toFixed(3)} native build with huge pages (${(ms['huge pages'] / ms['native build']).toFixed(2)}x more)` : 'no native build'}; huge pages held ${setups.map(([s]) => `${hugeMiB[s].toFixed(0)}`).join(' / ')} MiB${differ}`,
  );
  if (rows.length > 1) {
    const more = distances && first.distances ? `distance computations ${(distances / first.distances).toFixed(2)}x, ` : '';
    console.log(
      `          against ${first.n}: ${more}ms per query ${growth('small pages')}x / ${growth('huge pages')}x${nativeAddon ? ` / ${growth('native build')}x` : ''} (small pages / huge pages / native build; log ratio ${(Math.log(n) / Math.log(first.n)).toFixed(2)})`,
    );
  }
  await rm(dir, { recursive: true, force: true });
}
await rm(root, { recursive: true, force: true });
if (nativeAddon) await rm(nativeAddon, { recursive: true, force: true });
