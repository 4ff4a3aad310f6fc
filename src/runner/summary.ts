// The end-of-run summary, computed from the artifacts themselves (not from what this process
// happened to run), so a resumed run reports the whole run.
import { layout } from '../artifacts/layout.ts';
import { decodeNpy } from '../artifacts/npy.ts';
import { parquetRowCount, readParquet } from '../artifacts/parquet.ts';
import { ENCODER_NAMES } from '../config/schema.ts';
import { readLedger } from '../ledger/ledger.ts';
import { readManifest } from '../stages/manifest.ts';
import { readMiningSummary, type MiningSummary } from '../stages/mining-stats.ts';
import type { StageContext } from '../stages/stage.ts';
import type { Storage } from '../storage/storage.ts';
import type { StageReport } from './local.ts';

export interface RunSummary {
  images: { catalogued: number; refused: number };
  embeddings: Record<string, number>;
  pairs: Record<string, number>;
  triples: number;
  failures: Record<string, number>;
  seconds: Record<string, number>;
  mining: MiningSummary;
}

export async function summarize(ctx: StageContext, reports: StageReport[]): Promise<RunSummary> {
  const manifest = await readManifest(ctx.work);
  const failures: Record<string, number> = {};
  for (const f of await readLedger(ctx.work)) failures[`${f.stage}/${f.reason}`] = (failures[`${f.stage}/${f.reason}`] ?? 0) + 1;
  let embedded = 0;
  const pairs: Record<string, number> = Object.fromEntries(ENCODER_NAMES.map((e) => [e, 0]));
  let triples = 0;
  for (const { number } of manifest.parts) {
    const mask = decodeNpy(await ctx.work.read(layout.embeddingMask(number))).data;
    for (const b of mask) embedded += b;
    for (const p of await readParquet<{ relation: string }>(ctx.work, layout.pairsPart(number))) pairs[p.relation]++;
    triples += await parquetRowCount(ctx.output, layout.triplesPart(number));
  }
  const refused = Object.entries(failures)
    .filter(([k]) => k.startsWith('catalog/'))
    .reduce((a, [, v]) => a + v, 0);
  return {
    images: { catalogued: manifest.total, refused },
    embeddings: Object.fromEntries(ENCODER_NAMES.map((e) => [e, embedded])),
    pairs,
    triples,
    failures,
    seconds: Object.fromEntries(reports.map((r) => [r.stage, Math.round(r.seconds * 100) / 100])),
    mining: await readMiningSummary(ctx.work),
  };
}

export function formatSummary(s: RunSummary): string {
  const lines = [
    `images      ${s.images.catalogued} catalogued, ${s.images.refused} refused at catalog`,
    `embeddings  ${Object.entries(s.embeddings).map(([k, v]) => `${k} ${v}`).join(', ')}`,
    `pairs       ${Object.entries(s.pairs).map(([k, v]) => `${k} ${v}`).join(', ')} (total ${Object.values(s.pairs).reduce((a, b) => a + b, 0)})`,
    `recall      ${Object.entries(s.mining.spaces).map(([k, v]) => `${k} ${v.recall.in_band.toFixed(3)} in-band, ${v.recall.at_k.toFixed(3)} @${v.recall.k}`).join('; ')} (${Object.values(s.mining.spaces)[0]?.recall.queries ?? 0} queries)`,
    `selection   ${s.mining.queries_without_pair} queries without a pair, ${s.mining.duplicate_pairs_merged} pairs found in two spaces merged, target in-degree max ${s.mining.target_in_degree.max}, ${s.mining.near_duplicate_clusters} near-duplicate clusters`,
    `triples     ${s.triples}`,
    `failures    ${Object.keys(s.failures).length ? Object.entries(s.failures).map(([k, v]) => `${k} ${v}`).join(', ') : 'none'}`,
    `wall time   ${Object.entries(s.seconds).map(([k, v]) => `${k} ${v}s`).join(', ')}`,
  ];
  return lines.join('\n');
}

/** What `megapairs run` prints at the end, whichever runner ran: the summary and where the product is. */
export function runReport(s: RunSummary, output: Storage, seconds: number): string {
  return `\n${formatSummary(s)}\ntotal       ${seconds.toFixed(1)}s\ntriples in ${output.uri('triples/')}, JSONL in ${output.uri(layout.megapairsJsonl())}\n`;
}
