// One WebDataset tar shard for streaming training: per triple, members sharing its key,
//   <key>.query.jpg  <key>.target.jpg  <key>.hn0.jpg ... <key>.hnN.jpg  <key>.json
// where hn0 is the query itself (hns[0], as in the released data) and the JSON holds the
// instructions and where the images came from. The key is the pair id (no dots: WebDataset splits
// a member's name at its first dot).
import { createWriteStream } from 'node:fs';
import { TarWriter } from '../corpus/tar.ts';
import { storeViaLocalFile } from '../storage/staged-file.ts';
import type { Storage } from '../storage/storage.ts';
import type { TripleWithImages } from './triple-images.ts';

export interface WebdatasetSampleJson {
  q_text: string[];
  relation: string;
  similarity: number;
  description: string;
  pair_id: string;
  /** The images' names in the run: query, target, hard negatives. */
  q_img: string;
  t_img: string;
  hns: string[];
}

export async function writeWebdatasetShard(dest: Storage, key: string, batches: AsyncIterable<TripleWithImages[]>, tmpRoot?: string): Promise<number> {
  return storeViaLocalFile(
    dest,
    key,
    async (file) => {
      const tar = new TarWriter(createWriteStream(file));
      let samples = 0;
      for await (const batch of batches) {
        for (const { triple: t, query, target, hns } of batch) {
          const k = t.pair_id.replace(/\./g, '_');
          await tar.add(`${k}.query.jpg`, query.jpeg);
          await tar.add(`${k}.target.jpg`, target.jpeg);
          for (const [i, h] of hns.entries()) await tar.add(`${k}.hn${i}.jpg`, h.jpeg);
          const json: WebdatasetSampleJson = {
            q_text: t.q_text,
            relation: t.relation,
            similarity: t.similarity,
            description: t.description,
            pair_id: t.pair_id,
            q_img: query.name,
            t_img: target.name,
            hns: hns.map((h) => h.name),
          };
          await tar.add(`${k}.json`, Buffer.from(JSON.stringify(json)));
          samples++;
        }
      }
      await tar.finish();
      return samples;
    },
    tmpRoot,
  );
}
