// Times every stage on the sample corpus in a fresh work folder and prints images/s per stage and
// each stage's share of the wall time. Usage: npm run bench [-- --limit N] [-- --concurrency N]
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { parseConfig } from '../src/config/load.ts';
import { createContext } from '../src/runner/context.ts';
import { runLocal } from '../src/runner/local.ts';
import { ProgressReporter } from '../src/runner/progress.ts';
import { summarize } from '../src/report/summary.ts';
import { buildSampleCorpus } from '../src/sample/openmoji.ts';

const { values } = parseArgs({
  options: { limit: { type: 'string', default: '0' }, concurrency: { type: 'string', default: '2' }, keep: { type: 'boolean' } },
});
const root = path.join(import.meta.dirname, '..');
const sample = path.join(root, 'data', 'sample');
const built = await buildSampleCorpus({ outDir: sample });
const limit = Number(values.limit);
const work = await mkdtemp(path.join(tmpdir(), 'megapairs-bench-'));
const config = parseConfig({
  run: { name: 'bench' },
  input: { path: sample, max_shards: limit ? Math.ceil(limit / 500) : 0 },
  work: path.join(work, 'work'),
  output: path.join(work, 'output'),
  runner: { concurrency: Number(values.concurrency) },
});
const ctx = createContext(config);
ctx.cacheDir = path.join(root, 'data', '.cache'); // built-in models are made once, not timed
const started = Date.now();
const reports = await runLocal(ctx, { progress: new ProgressReporter(process.stderr, true) });
const total = (Date.now() - started) / 1000;
const summary = await summarize(ctx, reports);
const images = summary.images.catalogued;

console.log(`corpus: ${images} images (${built.shards} shards available), concurrency ${config.runner.concurrency}, node ${process.version}`);
console.log('stage       seconds   images/s   share');
for (const r of reports) {
  console.log(
    `${r.stage.padEnd(10)} ${r.seconds.toFixed(2).padStart(8)} ${(images / Math.max(r.seconds, 1e-3)).toFixed(0).padStart(10)} ${((100 * r.seconds) / total).toFixed(1).padStart(6)}%`,
  );
}
console.log(`total      ${total.toFixed(2).padStart(8)} ${(images / total).toFixed(0).padStart(10)}  100.0%`);
console.log(
  `pairs ${Object.entries(summary.pairs)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ')}; triples ${summary.triples}`,
);
if (!values.keep) await rm(work, { recursive: true, force: true });
