// The dataset card of the hf export: README.md whose YAML header gives the features, the split
// and its files in the form the Hugging Face Hub and `datasets` read (dataset_info, configs).
import { stringify } from 'yaml';
import { ENCODER_NAMES } from '../config/schema.ts';

export function datasetCard(opts: { runName: string; triples: number; shards: string[] }): string {
  const header = {
    pretty_name: `MegaPairs triples (${opts.runName})`,
    task_categories: ['image-to-image', 'image-feature-extraction'],
    dataset_info: {
      features: [
        { name: 'q_img', dtype: 'image' },
        { name: 'q_text', sequence: 'string' },
        { name: 't_img', dtype: 'image' },
        { name: 'hns', sequence: 'image' },
        { name: 'relation', dtype: 'string' },
        { name: 'similarity', dtype: 'float64' },
        { name: 'description', dtype: 'string' },
        { name: 'pair_id', dtype: 'string' },
      ],
      splits: [{ name: 'train', num_examples: opts.triples }],
    },
    configs: [{ config_name: 'default', data_files: [{ split: 'train', path: 'data/train-*' }] }],
  };
  return `---
${stringify(header).trimEnd()}
---

# MegaPairs triples: ${opts.runName}

Multimodal retrieval training triples made by the MegaPairs method (arXiv 2412.14475) with
megapairs. Each row: a query image \`q_img\` with instructions \`q_text\`
(any one of them, with the query image, should retrieve the target), the target image \`t_img\`,
and hard negatives \`hns\` (\`hns[0]\` is the query image itself, as in the released MegaPairs data).
\`relation\` is the embedding space that paired them (${ENCODER_NAMES.map((n) => `\`${n}\``).join(', ')})
and \`similarity\` their cosine similarity there.

${opts.triples} triples in ${opts.shards.length} Parquet shard(s) under \`data/\`; images are embedded
as JPEG (the \`Image\` feature's {bytes, path}).

\`\`\`python
from datasets import load_dataset
ds = load_dataset("parquet", data_files="data/train-*.parquet", split="train")
ds[0]["q_img"]  # a PIL image
\`\`\`
`;
}
