// The `megapairs export` command: --config <file> --to <folder or s3://prefix>. The destination
// uses the config's `s3:` settings; the run's catalog tells where every image's bytes are.
import path from 'node:path';
import { UsageError } from './usage-error.ts';
import { parseArgs } from 'node:util';
import { loadConfig } from '../config/load.ts';
import { createContext } from '../runner/context.ts';
import { ensureKeys } from '../provenance/resolve-run.ts';
import { readRunRecord } from '../provenance/run-record.ts';
import { openStorage } from '../storage/open.ts';
import { isS3Uri } from '../storage/s3-location.ts';
import { exportDataset } from '../export/export-dataset.ts';
import { exportShards, type ShardFormat } from '../export/export-shards.ts';
import type { Fit } from '../export/training-image.ts';
import type { ExportOptions } from '../export/export-dataset.ts';
import type { Storage } from '../storage/storage.ts';
import type { StageContext } from '../core/stage.ts';

export const EXPORT_USAGE = `export --config <file> --to <folder | s3://bucket/prefix> [--format jsonl|hf|webdataset]
         [--size 512] [--fit contain|cover|fill] [--quality 90] [--concurrency 8]
                                         write the triples for training, images as JPEG (size x size): jsonl (default):
                                         megapairs.jsonl and images/; hf: Parquet shards with embedded images and a
                                         dataset card; webdataset: tar shards; reruns skip what is already there`;

function intOption(name: string, value: string | undefined, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`--${name} must be an integer from ${min} to ${max}, not "${value}"`);
  return n;
}

/** Export reads a run's product: before any run of the config, say to run it first. */
async function mustHaveRun(ctx: StageContext, file: string): Promise<void> {
  const first = `run \`megapairs run --config ${file}\` first`;
  if (!(await readRunRecord(ctx)))
    throw new UsageError(`nothing to export: config ${file} has not been run (run ${ctx.config.run.name} has no record in ${ctx.work.root}); ${first}`);
  await ensureKeys(ctx);
  if (!(await ctx.work.exists(ctx.layout.catalogManifest())))
    throw new UsageError(`nothing to export: the run of config ${file} has not catalogued its corpus under its current keys; ${first}`);
}

export async function exportCommand(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      config: { type: 'string', short: 'c' },
      to: { type: 'string' },
      size: { type: 'string' },
      fit: { type: 'string' },
      quality: { type: 'string' },
      concurrency: { type: 'string' },
      format: { type: 'string', default: 'jsonl' },
    },
  });
  if (!values.config || !values.to) throw new UsageError('export needs --config <file> and --to <destination>');
  const fit = (values.fit ?? 'contain') as Fit;
  if (!['contain', 'cover', 'fill'].includes(fit)) throw new UsageError(`--fit must be contain, cover or fill, not "${values.fit}"`);
  const format = values.format!;
  if (!['jsonl', 'hf', 'webdataset'].includes(format)) throw new UsageError(`--format must be jsonl, hf or webdataset, not "${format}"`);
  const config = loadConfig(values.config);
  const ctx = createContext(config);
  await mustHaveRun(ctx, values.config);
  const to = isS3Uri(values.to) ? values.to : path.resolve(values.to);
  const dest = openStorage(to, { s3: config.s3, cacheDir: ctx.cacheDir });
  const started = Date.now();
  const image = {
    size: intOption('size', values.size, 512, 16, 4096),
    fit,
    quality: intOption('quality', values.quality, 90, 1, 100),
    concurrency: intOption('concurrency', values.concurrency, 8, 1, 256),
  };
  if (format !== 'jsonl') return exportShardsCommand(ctx, dest, format as ShardFormat, image, started);
  const report = await exportDataset(ctx, dest, {
    ...image,
    onPart: (done, parts, t) =>
      process.stderr.write(`[export  ] ${done}/${parts} parts  ${t.written} written, ${t.skipped} already there, ${t.failed} failed\n`),
  });
  const { images, triples } = report;
  process.stdout.write(
    `images   ${images.referenced} referenced: ${images.written} written, ${images.skipped} already there, ${images.failed} failed (in the ledger)\n` +
      `triples  ${triples.written} in ${dest.uri('megapairs.jsonl')}${triples.dropped ? `, ${triples.dropped} left out for a failed image` : ''}\n` +
      `time     ${((Date.now() - started) / 1000).toFixed(1)}s\n`,
  );
}

async function exportShardsCommand(
  ctx: StageContext,
  dest: Storage,
  format: ShardFormat,
  image: Omit<ExportOptions, 'onPart'>,
  started: number,
): Promise<void> {
  const r = await exportShards(ctx, dest, format, {
    ...image,
    maxPixels: ctx.config.input.max_pixels,
    batch: 64,
    onShard: (done, shards, t) => process.stderr.write(`[export  ] ${done}/${shards} ${format} shards  ${t.written} written, ${t.skipped} already there\n`),
  });
  process.stdout.write(
    `shards   ${r.shards.length} ${format} shards at ${dest.uri('')}: ${r.written} written, ${r.skipped} already there\n` +
      `triples  ${r.triples}${r.dropped ? `, ${r.dropped} left out for a failed image (in the ledger)` : ''}\n` +
      (format === 'hf' ? `card     ${dest.uri('README.md')}\n` : '') +
      `time     ${((Date.now() - started) / 1000).toFixed(1)}s\n`,
  );
}
