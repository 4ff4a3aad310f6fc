// The MegaPairs-compatible JSONL file: every emitted part's lines, in part order, streamed into
// one local file and stored whole. One unit.
import { layout } from '../artifacts/layout.ts';
import { storeViaLocalFile, writeChunks } from '../storage/staged-file.ts';
import { manifestOf } from './manifest.ts';
import type { Stage, StageContext, UnitResult } from './stage.ts';

export class JsonlStage implements Stage<'jsonl'> {
  readonly name = 'jsonl';

  async plan(): Promise<'jsonl'[]> {
    return ['jsonl'];
  }
  unitId(): string {
    return 'megapairs-jsonl';
  }
  isDone(ctx: StageContext): Promise<boolean> {
    return ctx.output.exists(layout.megapairsJsonl());
  }

  async run(ctx: StageContext): Promise<UnitResult> {
    let lines = 0;
    const parts = async function* () {
      for (const { number } of (await manifestOf(ctx)).parts) {
        // A part is bounded by the chunk size, so it is read whole; the file grows on disk.
        const part = await ctx.output.read(layout.triplesJsonlPart(number));
        for (const byte of part) if (byte === 0x0a) lines++;
        yield part;
      }
    };
    await storeViaLocalFile(ctx.output, layout.megapairsJsonl(), (file) => writeChunks(file, parts()), ctx.cacheDir);
    return { items: lines, failed: 0 };
  }
}
