// One Parquet shard as Hugging Face `datasets` writes image datasets: each image column is the
// Image feature's storage, struct {bytes: binary, path: string}; hns is a list of them; the footer
// carries the `huggingface` key-value metadata with the features, which `load_dataset("parquet")`
// reads to decode the structs as images with no extra step.
import parquet from 'parquetjs-lite';
import { storeViaLocalFile } from '../storage/staged-file.ts';
import type { Storage } from '../storage/storage.ts';
import type { ExportedImage, TripleWithImages } from './triple-images.ts';

const image = {
  // JPEG bytes do not compress: stored as they are.
  bytes: { type: 'BYTE_ARRAY', optional: true, compression: 'UNCOMPRESSED' },
  path: { type: 'UTF8', optional: true, compression: 'UNCOMPRESSED' },
};
const text = { type: 'UTF8', compression: 'GZIP' };

const schema = () =>
  new parquet.ParquetSchema({
    q_img: { fields: image },
    q_text: { ...text, repeated: true },
    t_img: { fields: image },
    hns: { repeated: true, fields: image },
    relation: text,
    similarity: { type: 'DOUBLE', compression: 'GZIP' },
    description: text,
    pair_id: text,
  } as never);

/** The columns as `datasets` Features (what its to_dict() gives), in column order. */
export const HF_FEATURES = {
  q_img: { _type: 'Image' },
  q_text: { feature: { dtype: 'string', _type: 'Value' }, _type: 'Sequence' },
  t_img: { _type: 'Image' },
  hns: { feature: { _type: 'Image' }, _type: 'Sequence' },
  relation: { dtype: 'string', _type: 'Value' },
  similarity: { dtype: 'float64', _type: 'Value' },
  description: { dtype: 'string', _type: 'Value' },
  pair_id: { dtype: 'string', _type: 'Value' },
} as const;

const cell = (img: ExportedImage) => ({ bytes: img.jpeg, path: img.path });

/** Writes the shard from batches of triples, `rowGroup` rows per row group; returns its row count. */
export async function writeHfShard(
  dest: Storage,
  key: string,
  batches: AsyncIterable<TripleWithImages[]>,
  rowGroup: number,
  tmpRoot?: string,
): Promise<number> {
  return storeViaLocalFile(
    dest,
    key,
    async (file) => {
      const writer = await parquet.ParquetWriter.openFile(schema(), file, { useDataPageV2: false });
      (writer as unknown as { setMetadata(k: string, v: string): void }).setMetadata('huggingface', JSON.stringify({ info: { features: HF_FEATURES } }));
      writer.setRowGroupSize(rowGroup);
      let rows = 0;
      for await (const batch of batches) {
        for (const { triple: t, query, target, hns } of batch) {
          await writer.appendRow({
            q_img: cell(query),
            q_text: t.q_text,
            t_img: cell(target),
            hns: hns.map(cell),
            relation: t.relation,
            similarity: t.similarity,
            description: t.description,
            pair_id: t.pair_id,
          });
          rows++;
        }
      }
      await writer.close();
      return rows;
    },
    tmpRoot,
  );
}
