// The MegaPairs-compatible JSONL file: every emitted part's lines, in part order, streamed into
// one local file and stored whole. One unit.
import { storeViaLocalFile, writeChunks } from '../storage/staged-file.ts';
import type { DoneMarker, Stage, StageContext, UnitResult } from '../core/stage.ts';
import { shared } from './shared-resources.ts';

export class JsonlStage implements Stage<'jsonl'> {
  readonly name = 'jsonl';
  readonly after = ['manifest', 'emit'];
  readonly chain = 'all';
  decidedBy(): Record<string, unknown> {
    return {};
  }

  async plan(): Promise<'jsonl'[]> {
    return ['jsonl'];
  }
  unitId(): string {
    return 'megapairs-jsonl';
  }
  doneMarkers(ctx: StageContext): DoneMarker[] {
    return [
      { storage: 'output', key: ctx.layout.exportedMarker(), holds: ctx.layout.keys.jsonl },
      { storage: 'output', key: ctx.layout.megapairsJsonl() },
    ];
  }

  async run(ctx: StageContext): Promise<UnitResult> {
    let lines = 0;
    const parts = async function* () {
      for (const { number } of (await shared(ctx).manifest()).parts) {
        // A part is bounded by the chunk size, so it is read whole; the file grows on disk.
        const part = await ctx.output.read(ctx.layout.triplesJsonlPart(number));
        for (const byte of part) if (byte === 0x0a) lines++;
        yield part;
      }
    };
    await storeViaLocalFile(ctx.output, ctx.layout.megapairsJsonl(), (file) => writeChunks(file, parts()), ctx.cacheDir);
    // Parts an earlier config emitted that this run has not (fewer shards): not this run's product.
    const numbers = (await shared(ctx).manifest()).parts.map((p) => p.number);
    const current = new Set(numbers.flatMap((n) => [ctx.layout.triplesPart(n), ctx.layout.triplesJsonlPart(n), ctx.layout.emittedMarker(n)]));
    for (const folder of ctx.layout.partFolders()) for await (const key of ctx.output.list(folder)) if (!current.has(key)) await ctx.output.delete(key);
    await ctx.output.write(ctx.layout.exportedMarker(), ctx.layout.keys.jsonl);
    return { items: lines, failed: 0 };
  }
}
