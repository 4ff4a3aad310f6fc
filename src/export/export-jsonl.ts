// The exported annotation file: the run's megapairs.jsonl, streamed line by line, with each image
// name pointing at its exported JPEG. A triple that uses an image which could not be exported is
// left out (the image is in the ledger), so every line a trainer reads has all its files.
import { createInterface } from 'node:readline';
import type { StageContext } from '../core/stage.ts';
import { storeViaLocalFile, writeChunks } from '../storage/staged-file.ts';
import type { Storage } from '../storage/storage.ts';
import { exportedImageKey } from './training-image.ts';

interface MegaPairsRecord {
  q_img: string;
  q_text: string[];
  t_img: string;
  hns: string[];
}

export async function exportJsonl(ctx: StageContext, dest: Storage, failed: Set<string>): Promise<{ lines: number; dropped: number }> {
  let lines = 0;
  let dropped = 0;
  const records = async function* () {
    for await (const line of createInterface({ input: ctx.output.readStream(ctx.layout.megapairsJsonl()), crlfDelay: Infinity })) {
      if (!line.trim()) continue;
      const r = JSON.parse(line) as MegaPairsRecord;
      if ([r.q_img, r.t_img, ...r.hns].some((img) => failed.has(img))) {
        dropped++;
        continue;
      }
      lines++;
      yield JSON.stringify({ ...r, q_img: exportedImageKey(r.q_img), t_img: exportedImageKey(r.t_img), hns: r.hns.map(exportedImageKey) }) + '\n';
    }
  };
  await storeViaLocalFile(dest, ctx.layout.megapairsJsonl(), (file) => writeChunks(file, records()), ctx.cacheDir);
  return { lines, dropped };
}
