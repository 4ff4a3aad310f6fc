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

/**
 * How to reach S3 or an S3-compatible store (MinIO, Ceph, R2) for any s3:// location. Credentials
 * never go here: they come from the standard AWS chain (environment, profile, IMDS/web identity).
 */
const s3Settings = z.strictObject({
  /** A custom endpoint, e.g. http://minio:9000; AWS itself when unset. */
  endpoint: z.string().min(1).optional(),
  /** The bucket's region; from AWS_REGION or the profile when unset (us-east-1 with a custom endpoint). */
  region: z.string().min(1).optional(),
  /** http://endpoint/bucket/key instead of http://bucket.endpoint/key (MinIO and most self-hosted stores). */
  force_path_style: z.boolean().default(false),
  /** Attempts per request, the first included, for throttling (503 SlowDown), 5xx and dropped connections. */
  max_attempts: z.number().int().min(1).max(100).default(10),
  /** Backoff between attempts: a random delay up to base * 2^attempt, capped at max (full jitter). */
  retry_base_ms: z.number().int().min(0).default(100),
  retry_max_ms: z.number().int().min(0).default(20_000),
  /** Uploads larger than one part go up as multipart uploads of this many MiB (S3's minimum is 5). */
  part_size_mib: z.number().int().min(5).max(5120).default(8),
  /** Parts of one multipart upload in flight at once. */
  upload_concurrency: z.number().int().min(1).max(64).default(4),
  /** A connection that sends nothing for this long is dropped and the request retried. */
  socket_timeout_ms: z.number().int().min(1000).default(60_000),
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
  /** Client settings for every s3:// location (input, work, output, export). */
  s3: s3Settings.prefault({}),
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
      /** Memory of one search unit (a loaded shard and one query part); a shard over it is refused when search is planned. */
      memory_budget_mb: z.number().positive().default(4096),
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
      /** A pair found in several spaces is kept once; its `relation` is the first of its spaces in this order. */
      relation_priority: z
        .array(z.enum(ENCODER_NAMES))
        .refine((a) => a.length === ENCODER_NAMES.length && new Set(a).size === a.length, `relation_priority must list each of ${ENCODER_NAMES.join(', ')} once`)
        .default([...ENCODER_NAMES]),
      /** The most pairs one image may be the target of (hubs); pairs over the cap are dropped in query order. 0: no cap. */
      max_pairs_per_target: z.number().int().min(0).default(8),
      /** Keep both A->B and B->A when each is mined (the paper); false keeps the one of the lower query id. */
      symmetric: z.boolean().default(true),
      /** Queries per space searched both exactly and by the index, to measure recall in every run. */
      recall_queries: z.number().int().min(1).default(200),
      /** Query parts a search unit streams past its shard (0: all). Fewer: more units, each shard read more often. */
      query_parts_per_unit: z.number().int().min(0).default(0),
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
      /** Work units run at once: by the local runner, or by each distributed worker process. */
      concurrency: z.number().int().min(1).max(256).default(2),
      /** Distributed: tries per unit before it lands in the failed set and the ledger. */
      attempts: z.number().int().min(1).max(100).default(3),
      /** Distributed: first retry delay; doubles per try, with jitter. */
      backoff_ms: z.number().int().min(0).default(5000),
      /** Distributed: a unit whose worker stops renewing its lock this long is handed to another. */
      lock_ms: z.number().int().min(500).default(30_000),
    })
    .prefault({}),
  /** The Redis that the distributed runner's queues live in. */
  redis: z
    .strictObject({
      /** redis:// or rediss:// (TLS); default: $REDIS_URL, else redis://127.0.0.1:6379. */
      url: z.string().min(1).optional(),
      /** Name of the environment variable holding the password (never the password itself). */
      password_env: z.string().default('REDIS_PASSWORD'),
      tls: z.boolean().default(false),
      /** Key prefix of the run's queues (use a hash tag such as "{megapairs}" on Redis Cluster). */
      prefix: z.string().regex(/^[^:\s]+$/, 'no ":" or spaces').default('megapairs'),
    })
    .prefault({}),
});

export type Config = z.infer<typeof configSchema>;
export type ImageEncoderConfig = z.infer<typeof imageEncoder>;
export type TextEncoderConfig = z.infer<typeof textEncoder>;
export type S3Settings = z.infer<typeof s3Settings>;
export type OpenAIAnnotatorConfig = z.infer<typeof openaiAnnotator>;
