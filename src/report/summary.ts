// The end-of-run summary, computed from the artifacts themselves (not from what this process
// happened to run), so a resumed run reports the whole run. Its shape is run-summary.ts.
import { ensureKeys } from '../provenance/resolve-run.ts';
import { outputLayout } from '../core/layout.ts';
import { decodeNpy } from '../artifacts/npy.ts';
import { parquetRowCount, readParquet } from '../artifacts/parquet.ts';
import { annotationSummary } from '../annotate/summary.ts';
import { ENCODER_NAMES } from '../config/schema.ts';
import { JOB_REFUSED, readLedger } from '../ledger/ledger.ts';
import { readManifest } from '../stages/manifest.ts';
import { readMiningSummary, type MiningSummary } from '../stages/mining-stats.ts';
import type { StageContext } from '../core/stage.ts';
import type { Storage } from '../storage/storage.ts';
import type { StageReport } from '../core/stage-report.ts';
import { decideOutcome } from './outcome.ts';
import type { RunSummary } from './run-summary.ts';
import { canonicalJson } from '../core/digest.ts';
import { writeRunReport } from './write-report.ts';
import { redact } from '../secrets/redact.ts';

export async function summarize(ctx: StageContext, reports: StageReport[]): Promise<RunSummary> {
  await ensureKeys(ctx); // the summary of this config's artifacts
  // A run that stopped early has only some artifacts: count what is on disk, and say it is incomplete.
  const layout = ctx.layout;
  const manifest = (await ctx.work.exists(layout.catalogManifest())) ? await readManifest(ctx) : { total: 0, parts: [] };
  const ledger = await readLedger(ctx);
  const failures: Record<string, number> = {};
  for (const f of ledger) failures[`${f.stage}/${f.reason}`] = (failures[`${f.stage}/${f.reason}`] ?? 0) + 1;
  let embedded = 0;
  const pairs: Record<string, number> = Object.fromEntries(ENCODER_NAMES.map((e) => [e, 0]));
  let triples = 0;
  let complete = manifest.parts.length > 0 && (await ctx.output.exists(layout.megapairsJsonl()));
  for (const { number } of manifest.parts) {
    if (await ctx.work.exists(layout.embeddingMask(number))) for (const b of decodeNpy(await ctx.work.read(layout.embeddingMask(number))).data) embedded += b;
    if (await ctx.work.exists(layout.pairsPart(number)))
      for (const p of await readParquet<{ relation: string }>(ctx.work, layout.pairsPart(number))) pairs[p.relation]++;
    if (await ctx.output.exists(layout.triplesPart(number))) triples += await parquetRowCount(ctx.output, layout.triplesPart(number));
    else complete = false;
  }
  const refused = ledger.filter((f) => f.stage === 'catalog' && f.reason !== 'unit_failed' && f.reason !== JOB_REFUSED).length;
  const pairsTotal = Object.values(pairs).reduce((a, b) => a + b, 0);
  const outcome = decideOutcome({
    artifactsComplete: complete,
    failures: ledger,
    inputs: { catalog: manifest.total + refused, embed: manifest.total, mine: embedded, annotate: pairsTotal, emit: pairsTotal, export: triples },
    catalogued: manifest.total,
    triples,
    maxFailureShare: ctx.config.run.max_failure_share,
  });
  return {
    images: { catalogued: manifest.total, refused },
    embeddings: Object.fromEntries(ENCODER_NAMES.map((e) => [e, embedded])),
    pairs,
    triples,
    failures,
    seconds: Object.fromEntries(reports.map((r) => [r.stage, Math.round(r.seconds * 100) / 100])),
    stages: Object.fromEntries(
      reports.map((r) => [
        r.stage,
        { key: r.key, status: r.status, reason: r.reason, units: r.units, items: r.items, failed: r.failed, seconds: Math.round(r.seconds * 100) / 100 },
      ]),
    ),
    outcome,
    annotation: await annotationSummary(
      ctx,
      manifest.parts.map((p) => p.number),
    ),
    mining: await readMiningSummary(ctx),
  };
}

/** What the files say, without what this process timed: two runs over the same artifacts agree on it. */
const filesPart = (s: RunSummary) => canonicalJson({ ...s, seconds: undefined, stages: undefined });

/**
 * Writes summary.json and report.html, except when this run did nothing (every stage reused its
 * artifacts) and the summary already there says the same of the files: then that summary and
 * its report, with the timings of the run that did the work, stay, and are what is returned.
 */
export async function saveSummary(ctx: StageContext, fresh: RunSummary): Promise<{ summary: RunSummary; reused: boolean }> {
  const summary = JSON.parse(redact(JSON.stringify(fresh))) as RunSummary; // an outcome message may quote an error
  const key = outputLayout.summary();
  const idle = Object.values(summary.stages).every((s) => s.status === 'reused' || s.status === 'not needed');
  if (idle && (await ctx.output.exists(key)) && (await ctx.output.exists(outputLayout.report()))) {
    const earlier = JSON.parse((await ctx.output.read(key)).toString('utf8')) as RunSummary;
    if (filesPart(earlier) === filesPart(summary)) return { summary: earlier, reused: true };
  }
  await ctx.output.write(key, JSON.stringify(summary, null, 1));
  await writeRunReport(ctx, summary);
  return { summary, reused: false };
}

/** The summary's recall and selection lines. */
function miningLines(m: MiningSummary): string[] {
  return [
    `recall      ${Object.entries(m.spaces)
      .map(([k, v]) => {
        const r = v.recall;
        return `${k} ${r.in_band.toFixed(3)} in-band, ${r.at_k.toFixed(3)} @${r.k} (by id ${r.in_band_by_id.toFixed(3)}, ${r.at_k_by_id.toFixed(3)})`;
      })
      .join('; ')} (${Object.values(m.spaces)[0]?.recall.queries ?? 0} queries)`,
    `selection   ${m.queries_without_pair} queries without a pair, ${m.duplicate_pairs_merged} pairs found in two spaces merged, target in-degree max ${m.target_in_degree.max}, ${m.near_duplicate_clusters} near-duplicate clusters`,
  ];
}

export function formatSummary(s: RunSummary): string {
  const lines = [
    `images      ${s.images.catalogued} catalogued, ${s.images.refused} refused at catalog`,
    `embeddings  ${Object.entries(s.embeddings)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}`,
    `pairs       ${Object.entries(s.pairs)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')} (total ${Object.values(s.pairs).reduce((a, b) => a + b, 0)})`,
    ...(s.mining ? miningLines(s.mining) : []),
    `triples     ${s.triples}`,
    `failures    ${
      Object.keys(s.failures).length
        ? Object.entries(s.failures)
            .map(([k, v]) => `${k} ${v}`)
            .join(', ')
        : 'none'
    }`,
    `wall time   ${Object.entries(s.seconds)
      .map(([k, v]) => `${k} ${v}s`)
      .join(', ')}`,
    ...Object.entries(s.stages)
      .filter(([, v]) => v.status)
      .map(([stage, v], i) => `${i ? '' : 'stages'.padEnd(12)}${i ? ' '.repeat(12) : ''}${stage.padEnd(9)} ${v.status!.padEnd(13)} ${v.reason}`),
    `outcome     ${s.outcome.message} (exit ${s.outcome.exit_code})`,
  ];
  return lines.join('\n');
}

/** What `megapairs run` prints at the end, whichever runner ran: the summary and where the product is. */
export function runReport(s: RunSummary, output: Storage, seconds: number): string {
  return `\n${formatSummary(s)}\ntotal       ${seconds.toFixed(1)}s\ntriples in ${output.uri('triples/')}, JSONL in ${output.uri(outputLayout.megapairsJsonl())}\n`;
}

/** What `run` adds when saveSummary kept the summary and report of the run that did the work. */
export const reusedNote = (output: Storage): string =>
  `nothing to do: every stage reused its artifacts; ${output.uri(outputLayout.summary())} and ${output.uri(outputLayout.report())} are kept from the run that did the work (its wall times above)\n`;
