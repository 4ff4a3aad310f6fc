// `megapairs export --format hf|webdataset`: the triples as shards that trainers load directly,
// one shard per triples part (parts with no triples make none), images embedded as JPEG:
//   hf:          data/train-NNNNN-of-MMMMM.parquet and README.md (the dataset card)
//   webdataset:  megapairs-NNNNNN.tar
// A shard already at the destination is complete (stored whole) and skipped, so an interrupted
// export resumes. The card is written last, so a card at the destination means its shards are there.
import { ensureKeys } from '../provenance/resolve-run.ts';
import { parquetRowCount } from '../artifacts/parquet.ts';
import { readManifest } from '../stages/manifest.ts';
import type { StageContext } from '../core/stage.ts';
import type { Storage } from '../storage/storage.ts';
import { datasetCard } from './dataset-card.ts';
import { writeHfShard } from './hf-parquet.ts';
import { formatLedger, tripleBatches, type TripleImageOptions } from './triple-images.ts';
import { writeWebdatasetShard } from './webdataset-shard.ts';

export type ShardFormat = 'hf' | 'webdataset';

export interface ShardExportReport {
  shards: string[];
  written: number;
  skipped: number;
  /** Triples in the shards written by this call (and, for hf, in those skipped). */
  triples: number;
  /** Triples left out because one of their images could not be exported (each image in the ledger). */
  dropped: number;
}

const pad = (n: number, width: number) => String(n).padStart(width, '0');

export function shardKey(format: ShardFormat, index: number, count: number): string {
  return format === 'hf' ? `data/train-${pad(index, 5)}-of-${pad(count, 5)}.parquet` : `megapairs-${pad(index, 6)}.tar`;
}

export async function exportShards(
  ctx: StageContext,
  dest: Storage,
  format: ShardFormat,
  opts: TripleImageOptions & { onShard?: (done: number, shards: number, report: ShardExportReport) => void },
): Promise<ShardExportReport> {
  await ensureKeys(ctx); // the product of this config's keys, never an older one's
  const manifest = await readManifest(ctx);
  const parts: Array<{ number: number; triples: number }> = [];
  for (const { number } of manifest.parts) {
    const triples = await parquetRowCount(ctx.output, ctx.layout.triplesPart(number));
    if (triples) parts.push({ number, triples });
  }
  const report: ShardExportReport = { shards: [], written: 0, skipped: 0, triples: 0, dropped: 0 };
  for (const [i, part] of parts.entries()) {
    const key = shardKey(format, i, parts.length);
    report.shards.push(key);
    if (await dest.exists(key)) {
      report.skipped++;
      if (format === 'hf') report.triples += await parquetRowCount(dest, key);
    } else {
      const ledger = formatLedger(format, part.number);
      const batches = tripleBatches(ctx, part.number, opts, ledger);
      const rows =
        format === 'hf' ? await writeHfShard(dest, key, batches, opts.batch, ctx.cacheDir) : await writeWebdatasetShard(dest, key, batches, ctx.cacheDir);
      await ledger.save(ctx);
      report.written++;
      report.triples += rows;
      report.dropped += part.triples - rows;
    }
    opts.onShard?.(i + 1, parts.length, report);
  }
  if (format === 'hf') await dest.write('README.md', datasetCard({ runName: ctx.config.run.name, triples: report.triples, shards: report.shards }));
  return report;
}
