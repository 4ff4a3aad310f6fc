// What a grown corpus costs: a run on N shards, two shards added, the run again (catalog and
// embeddings are keyed per part, so only the new shards are embedded), against a fresh run on all
// N + 2 in the same process, one after the other. With a random-weight ViT-B/16 as the CLIP image
// tower (tools/export_onnx.py --random), embedding is the cost that matters, as on a GPU cluster.
// Usage: npx tsx bench/corpus-growth.ts [--vit data/.cache/bench/vit-b16.onnx] [--shards 3] [--per-shard 12]
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { parseConfig } from '../src/config/load.ts';
import { createContext } from '../src/runner/context.ts';
import { runLocal } from '../src/runner/local.ts';
import type { StageReport } from '../src/core/stage-report.ts';
import { ProgressReporter } from '../src/runner/progress.ts';

const { values } = parseArgs({
  options: { vit: { type: 'string' }, shards: { type: 'string', default: '3' }, 'per-shard': { type: 'string', default: '12' } },
});
const root = path.join(import.meta.dirname, '..');
const vit = values.vit ?? path.join(root, 'data', '.cache', 'bench', 'vit-b16.onnx');
const n = Number(values.shards);
const per = Number(values['per-shard']);
const shardName = (i: number) => String(i).padStart(5, '0');

// N + 2 shards of 512x384 JPEGs, made once; the run's input starts with the first N.
const all = path.join(root, 'data', 'bench-growth', `${n + 2}x${per}`);
if (!existsSync(path.join(all, `${shardName(n + 1)}.tar`)))
  execFileSync(process.execPath, [path.join(root, 'bench', 'gpu', 'gen-corpus.mjs'), root, all, String((n + 2) * per), String(per)]);
const tmp = await mkdtemp(path.join(os.tmpdir(), 'megapairs-bench-growth-'));
const input = path.join(tmp, 'corpus');
mkdirSync(input);
const addShards = (from: number, to: number) => {
  for (let i = from; i < to; i++)
    for (const ext of ['tar', 'parquet']) copyFileSync(path.join(all, `${shardName(i)}.${ext}`), path.join(input, `${shardName(i)}.${ext}`));
};

const config = (work: string) =>
  parseConfig({
    run: { name: 'bench-growth', seed: 7 },
    input: { path: input, caption: { source: 'txt' } },
    work: path.join(work, 'work'),
    output: path.join(work, 'output'),
    encoders: existsSync(vit) ? { visual_semantic: { model: vit, preset: 'clip', batch_size: 16 } } : {},
    annotate: { annotator: 'template' },
    runner: { kind: 'local', concurrency: 1 },
  });
const quiet = new ProgressReporter(process.stderr, true);
const run = async (work: string) => {
  const started = Date.now();
  const reports = await runLocal(createContext(config(work)), { progress: quiet });
  return { reports, seconds: (Date.now() - started) / 1000 };
};
const stage = (r: StageReport[], name: string) => r.find((s) => s.stage === name)!;

console.log(`${existsSync(vit) ? `ViT-B/16 ${path.relative(root, vit)}` : 'built-in encoders (no ViT file)'}; ${n} shards, then ${n + 2}, ${per} images each`);
addShards(0, n);
const first = await run(path.join(tmp, 'grown'));
addShards(n, n + 2);
const grown = await run(path.join(tmp, 'grown'));
const fresh = await run(path.join(tmp, 'fresh'));
const same =
  readFileSync(path.join(tmp, 'grown', 'output', 'megapairs.jsonl'), 'utf8') === readFileSync(path.join(tmp, 'fresh', 'output', 'megapairs.jsonl'), 'utf8');
const line = (label: string, r: { reports: StageReport[]; seconds: number }) => {
  const e = stage(r.reports, 'embed');
  console.log(
    `  ${label.padEnd(22)} embed ${e.items} images in ${e.seconds.toFixed(1)} s (${e.skipped} of ${e.units} parts reused); whole run ${r.seconds.toFixed(1)} s`,
  );
};
line(`first run, ${n} shards`, first);
line(`grown run, ${n + 2} shards`, grown);
line(`fresh run, ${n + 2} shards`, fresh);
const ge = stage(grown.reports, 'embed').seconds;
const fe = stage(fresh.reports, 'embed').seconds;
console.log(`  embed time grown / fresh: ${(ge / fe).toFixed(2)}; whole run ${(grown.seconds / fresh.seconds).toFixed(2)}; triples identical: ${same}`);
console.log(
  `  load ${os
    .loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')}`,
);
await rm(tmp, { recursive: true, force: true });
