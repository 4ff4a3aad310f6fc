// Writes report.html beside summary.json at the end of a run (either runner), from the summary and
// a gallery of sample triples read back from the output.
import { outputLayout } from '../core/layout.ts';
import type { RunSummary } from './run-summary.ts';
import type { StageContext } from '../core/stage.ts';
import { galleryTriples } from './gallery.ts';
import { renderReport } from './render.ts';
import type { ReportSummary } from './sections.ts';
import { redact } from '../secrets/redact.ts';

/** Writes report.html under the output and returns its URI. */
export async function writeRunReport(ctx: StageContext, summary: RunSummary | ReportSummary): Promise<string> {
  const gallery = await galleryTriples(ctx, { perRelation: 4, side: 150, maxParts: 8 });
  const html = renderReport({
    runName: ctx.config.run.name,
    summary: summary as ReportSummary,
    band: ctx.config.mine.band,
    gallery,
    generatedAt: new Date(),
  });
  await ctx.output.write(outputLayout.report(), redact(html));
  return ctx.output.uri(outputLayout.report());
}
