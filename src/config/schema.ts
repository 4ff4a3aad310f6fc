// The one config file that drives a run. Defaults are the paper's values (DESIGN.md, "The method");
// every object is strict so that a misspelt key fails before any work starts.
import { z } from 'zod';

export const ENCODER_NAMES = ['visual_semantic', 'visual_pattern', 'caption'] as const;
export type EncoderName = (typeof ENCODER_NAMES)[number];

const imageEncoder = z
  .strictObject({
    /** `builtin:<name>` for the project's generated descriptors, or a path / URL of an .onnx file. */
    model: z.string().min(1),
    /** Square input side in pixels after resize and crop. */
    size: z.number().int().min(8).max(2048).default(224),
    /** `center`: resize the short side to `size` then centre-crop; `squash`: resize to size x size. */
    crop: z.enum(['center', 'squash']).default('center'),
    /** Per-channel mean and std applied to pixels scaled to [0, 1] (RGB order). */
    mean: z.tuple([z.number(), z.number(), z.number()]).default([0.48145466, 0.4578275, 0.40821073]),
    std: z.tuple([z.number(), z.number(), z.number()]).default([0.26862954, 0.26130258, 0.27577711]),
    /** Background colour that transparent pixels are flattened onto. */
    background: z.string().default('#ffffff'),
    input_name: z.string().optional(),
    output_name: z.string().optional(),
    batch_size: z.number().int().min(1).max(4096).default(32),
  })
  .describe('An image encoder: an ONNX model taking float32 [N, 3, size, size].');

const textEncoder = z
  .strictObject({
    model: z.string().min(1),
    /** A Hugging Face `tokenizer.json` (the format CLIP tokenizers ship in). */
    tokenizer: z.string().min(1),
    max_length: z.number().int().min(2).max(4096).default(77),
    /** Names of the model inputs; `attention_mask_name: null` for models that take only ids. */
    input_name: z.string().default('input_ids'),
    attention_mask_name: z.string().nullable().default('attention_mask'),
    output_name: z.string().optional(),
    batch_size: z.number().int().min(1).max(4096).default(64),
  })
  .describe('A text encoder: an ONNX model taking int64 token ids [N, max_length].');

const openaiAnnotator = z.strictObject({
  /** Base URL of an OpenAI-compatible server, e.g. http://vllm:8000/v1. */
  base_url: z.string().min(1),
  /** Name of the environment variable that holds the API key (never the key itself). */
  api_key_env: z.string().default('OPENAI_API_KEY'),
  /** The multimodal model that describes the pair (InternVL2-26B in the paper). */
  mllm: z.string().min(1),
  /** The text model that writes instructions (Llama-3-8B in the paper); defaults to `mllm`. */
  llm: z.string().optional(),
  /** WORD_NUM is drawn per call from this inclusive range. */
  word_num: z.tuple([z.number().int().min(1), z.number().int().min(1)]).default([60, 100]),
  /** Demonstrations per instruction prompt, drawn from the pool. */
  demonstrations: z.number().int().min(0).max(50).default(5),
  min_instructions: z.number().int().min(1).default(3),
  /** Side of the images sent to the MLLM (they go as JPEG data URLs). */
  image_size: z.number().int().min(64).max(2048).default(512),
  temperature: z.number().min(0).max(2).default(0.7),
  max_tokens: z.number().int().min(16).default(512),
  concurrency: z.number().int().min(1).max(1024).default(8),
  timeout_ms: z.number().int().min(1000).default(120_000),
  /** Attempts per call, including the first, for transport errors and malformed replies. */
  attempts: z.number().int().min(1).max(20).default(3),
});

export const configSchema = z.strictObject({
  run: z
    .strictObject({
      name: z.string().regex(/^[A-Za-z0-9._-]+$/, 'letters, digits, ".", "_" and "-"').default('megapairs'),
      seed: z.number().int().default(42),
    })
    .prefault({}),
  input: z.strictObject({
    /** A local folder or s3:// prefix of img2dataset webdataset output: NNNNN.tar beside NNNNN.parquet. */
    path: z.string().min(1),
    /** Where the caption comes from: the tar's `.txt` member, or a column of the shard's parquet. */
    caption: z
      .strictObject({
        source: z.enum(['txt', 'parquet']).default('txt'),
        column: z.string().default('re_caption'),
      })
      .prefault({}),
    /** Images over this many pixels are refused (decompression bombs). */
    max_pixels: z.number().int().min(1).default(40_000_000),
    /** Process only the first N shards (0: all). */
    max_shards: z.number().int().min(0).default(0),
  }),
  /** Where intermediate artifacts go (catalog, embeddings, indexes, pairs, annotations, ledger). */
  work: z.string().min(1),
  /** Where the triples and the JSONL export go. */
  output: z.string().min(1),
  encoders: z
    .strictObject({
      visual_semantic: imageEncoder.prefault({ model: 'builtin:shape' }),
      visual_pattern: imageEncoder.prefault({ model: 'builtin:colour' }),
      caption: textEncoder.prefault({ model: 'builtin:caption', tokenizer: 'builtin:caption' }),
    })
    .prefault({}),
  index: z
    .strictObject({
      /** Images per HNSW index shard; a query is searched in every shard and the results merged. */
      shard_size: z.number().int().min(1).default(1_000_000),
      m: z.number().int().min(2).max(128).default(16),
      ef_construction: z.number().int().min(8).default(200),
      ef_search: z.number().int().min(8).default(128),
    })
    .prefault({}),
  mine: z
    .strictObject({
      /** Neighbours retrieved per query per space. */
      k: z.number().int().min(2).max(1000).default(20),
      /** A neighbour whose cosine similarity lies strictly inside (low, high) may become a target. */
      band: z
        .tuple([z.number().min(-1).max(1), z.number().min(-1).max(1)])
        .refine(([lo, hi]) => lo < hi, 'band must be [low, high] with low < high')
        .default([0.8, 0.96]),
      /** Targets kept per query per space (drawn, seeded, from the neighbours inside the band). */
      targets_per_space: z.number().int().min(1).default(1),
      /** Length of `hns`: the query itself first, then other retrieved images. */
      hard_negatives: z.number().int().min(1).default(5),
    })
    .prefault({}),
  annotate: z
    .strictObject({
      annotator: z.enum(['template', 'openai']).default('template'),
      openai: openaiAnnotator.optional(),
    })
    .refine((a) => a.annotator !== 'openai' || a.openai !== undefined, {
      message: 'annotator "openai" needs an `openai:` section (base_url, mllm, ...)',
      path: ['openai'],
    })
    .prefault({}),
  runner: z
    .strictObject({
      kind: z.enum(['local', 'distributed']).default('local'),
      /** Work units run at once by the local runner. */
      concurrency: z.number().int().min(1).max(256).default(2),
    })
    .prefault({}),
});

export type Config = z.infer<typeof configSchema>;
export type ImageEncoderConfig = z.infer<typeof imageEncoder>;
export type TextEncoderConfig = z.infer<typeof textEncoder>;
export type OpenAIAnnotatorConfig = z.infer<typeof openaiAnnotator>;
