// The exported annotation file: the run's megapairs.jsonl, streamed line by line, with each image
// name pointing at its exported JPEG. A triple that uses an image which could not be exported is
// left out (the image is in the ledger), so every line a trainer reads has all its files.
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { once } from 'node:events';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { layout } from '../artifacts/layout.ts';
import type { StageContext } from '../stages/stage.ts';
import type { Storage } from '../storage/storage.ts';
import { exportedImageKey } from './training-image.ts';

interface MegaPairsRecord {
  q_img: string;
  q_text: string[];
  t_img: string;
  hns: string[];
}

export async function exportJsonl(ctx: StageContext, dest: Storage, failed: Set<string>): Promise<{ lines: number; dropped: number }> {
  await mkdir(ctx.cacheDir, { recursive: true });
  const dir = await mkdtemp(path.join(ctx.cacheDir, 'export-jsonl-'));
  const file = path.join(dir, 'megapairs.jsonl');
  let lines = 0;
  let dropped = 0;
  try {
    const out = createWriteStream(file);
    const input = createInterface({ input: ctx.output.readStream(layout.megapairsJsonl()), crlfDelay: Infinity });
    for await (const line of input) {
      if (!line.trim()) continue;
      const r = JSON.parse(line) as MegaPairsRecord;
      if ([r.q_img, r.t_img, ...r.hns].some((img) => failed.has(img))) {
        dropped++;
        continue;
      }
      const rec = { ...r, q_img: exportedImageKey(r.q_img), t_img: exportedImageKey(r.t_img), hns: r.hns.map(exportedImageKey) };
      if (!out.write(JSON.stringify(rec) + '\n')) await once(out, 'drain');
      lines++;
    }
    await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())));
    await dest.writeFromFile(layout.megapairsJsonl(), file);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return { lines, dropped };
}
