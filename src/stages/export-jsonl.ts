// The MegaPairs-compatible JSONL file: every emitted part's lines, in part order, streamed into
// one local file and stored whole. One unit.
import { storeViaLocalFile, writeChunks } from '../storage/staged-file.ts';
import { manifestOf } from './manifest.ts';
import type { Stage, StageContext, UnitResult } from './stage.ts';

export class ExportJsonlStage implements Stage<'jsonl'> {
  readonly name = 'export';
  readonly after = ['manifest', 'emit'];
  decidedBy(): Record<string, unknown> {
    return {};
  }

  async plan(): Promise<'jsonl'[]> {
    return ['jsonl'];
  }
  unitId(): string {
    return 'megapairs-jsonl';
  }
  async isDone(ctx: StageContext): Promise<boolean> {
    return (await ctx.work.exists(ctx.layout.exportedMarker())) && ctx.output.exists(ctx.layout.megapairsJsonl());
  }

  async run(ctx: StageContext): Promise<UnitResult> {
    let lines = 0;
    const parts = async function* () {
      for (const { number } of (await manifestOf(ctx)).parts) {
        // A part is bounded by the chunk size, so it is read whole; the file grows on disk.
        const part = await ctx.output.read(ctx.layout.triplesJsonlPart(number));
        for (const byte of part) if (byte === 0x0a) lines++;
        yield part;
      }
    };
    await storeViaLocalFile(ctx.output, ctx.layout.megapairsJsonl(), (file) => writeChunks(file, parts()), ctx.cacheDir);
    // Parts an earlier config emitted that this run has not (fewer shards): not this run's product.
    const current = new Set((await manifestOf(ctx)).parts.flatMap((p) => [ctx.layout.triplesPart(p.number), ctx.layout.triplesJsonlPart(p.number)]));
    for await (const key of ctx.output.list('triples/')) if (!current.has(key)) await ctx.output.delete(key);
    await ctx.work.write(ctx.layout.exportedMarker(), `${lines}\n`);
    return { items: lines, failed: 0 };
  }
}
