// The MegaPairs-compatible JSONL file: every emitted part's lines, in part order, streamed into
// one local file and stored whole. One unit.
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { once } from 'node:events';
import path from 'node:path';
import { layout } from '../artifacts/layout.ts';
import { manifestOf } from './manifest.ts';
import type { Stage, StageContext, UnitResult } from './stage.ts';

export class ExportJsonlStage implements Stage<'jsonl'> {
  readonly name = 'export';

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
    await mkdir(ctx.cacheDir, { recursive: true });
    const dir = await mkdtemp(path.join(ctx.cacheDir, 'jsonl-'));
    const file = path.join(dir, 'megapairs.jsonl');
    let lines = 0;
    try {
      const out = createWriteStream(file);
      for (const { number } of (await manifestOf(ctx)).parts) {
        // A part is bounded by the chunk size, so it is read whole; the file grows on disk.
        const part = await ctx.output.read(layout.triplesJsonlPart(number));
        for (const byte of part) if (byte === 0x0a) lines++;
        if (!out.write(part)) await once(out, 'drain');
      }
      await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
      await ctx.output.writeFromFile(layout.megapairsJsonl(), file);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    return { items: lines, failed: 0 };
  }
}
