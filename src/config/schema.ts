// The one config file that drives a run. Defaults are the paper's values (README.md, "The method in a paragraph");
// every object is strict so that a misspelt key fails before any work starts.
import { z } from 'zod';

/** The image spaces (an encoder of images each) and the text space; a new space is its name here and its section under `encoders`. */
export const IMAGE_ENCODER_NAMES = ['visual_semantic', 'visual_pattern'] as const;
export const ENCODER_NAMES = [...IMAGE_ENCODER_NAMES, 'caption'] as const;
export type EncoderName = (typeof ENCODER_NAMES)[number];

/** Output of a model that gives [N, T, D] hidden states instead of a pooled [N, D] embedding. */
const pooling = z
  .enum(['none', 'cls', 'mean', 'eot'])
  .default('none')
  .describe(
    'none: the output is already [N, D]; cls: token 0; mean: average over the attention mask (images: all tokens); eot: the position of the highest token id, as CLIP',
  );

const imageEncoder = z
  .strictObject({
    /** `builtin:<name>` for the project's generated descriptors, or a path / URL of an .onnx file. */
    model: z.string().min(1),
    /** Fills size, resize, crop, interpolation, mean and std with the model family's published values; explicit keys win. */
    preset: z.enum(['clip', 'eva-clip', 'dinov2', 'siglip']).optional(),
    /** Square input side in pixels after resize and crop. */
    size: z.number().int().min(8).max(2048).optional(),
    /** The shortest side is resized to this, then the centre `size` x `size` is cropped (default: `size`; dinov2: size * 256/224). */
    resize: z.number().int().min(8).max(4096).optional(),
    /** `center`: resize the short side to `resize` then centre-crop `size`; `squash`: resize to size x size. */
    crop: z.enum(['center', 'squash']).optional(),
    /** The resampling kernel, computed as PIL.Image.resize does (default bicubic, as CLIP, EVA-CLIP, DINOv2 and SigLIP were trained). */
    interpolation: z.enum(['bicubic', 'bilinear', 'lanczos3']).optional(),
    /** Per-channel mean and std applied to pixels scaled to [0, 1] (RGB order); default CLIP's. */
    mean: z.tuple([z.number(), z.number(), z.number()]).optional(),
    std: z.tuple([z.number(), z.number(), z.number()]).optional(),
    /** `drop`: transparent pixels keep their stored colour, as PIL's convert("RGB"); `flatten`: composite onto `background`. */
    alpha: z.enum(['drop', 'flatten']).default('drop'),
    /** Background colour (#rrggbb) for `alpha: flatten`. */
    background: z.string().default('#ffffff'),
    /** `ignore`: embedded ICC profiles are ignored, as PIL-based loaders do; `apply`: converted to sRGB. */
    icc: z.enum(['ignore', 'apply']).default('ignore'),
    /** `ignore`: as PIL's Image.open; `apply`: rotate by the EXIF orientation, as ImageOps.exif_transpose. */
    exif_orientation: z.enum(['ignore', 'apply']).default('ignore'),
    input_name: z.string().optional(),
    output_name: z.string().optional(),
    pooling,
    batch_size: z.number().int().min(1).max(4096).default(32),
  })
  .describe('An image encoder: an ONNX model taking float32 or float16 [N, 3, size, size].');

const textEncoder = z
  .strictObject({
    model: z.string().min(1),
    /** A Hugging Face `tokenizer.json` (the format CLIP tokenizers ship in). */
    tokenizer: z.string().min(1),
    max_length: z.number().int().min(2).max(4096).default(77),
    /** The token that pads to max_length (default: the file's padding, else [PAD]/<pad>, else the end token as CLIP). */
    pad_token: z.string().optional(),
    /** Names of the model inputs; `attention_mask_name: null` for models that take only ids. */
    input_name: z.string().default('input_ids'),
    attention_mask_name: z.string().nullable().default('attention_mask'),
    output_name: z.string().optional(),
    /** CLIP text towers exported without their pooling give [N, T, D]: `eot` picks the end-of-text token. */
    pooling,
    batch_size: z.number().int().min(1).max(4096).default(64),
  })
  .describe('A text encoder: an ONNX model taking int64 or int32 token ids [N, max_length].');

/** Limits of one model endpoint; unset ones come from the shared `annotate.openai` values. */
const endpointLimits = {
  /** Requests in flight at once, across every unit and thread of a process. */
  concurrency: z.number().int().min(1).max(4096).optional(),
  /** Requests started per second (process-wide; across workers too when runner.kind is distributed). */
  requests_per_s: z.number().positive().optional(),
  /** Prompt + completion tokens per minute, charged as replies report their usage. */
  tokens_per_min: z.number().positive().optional(),
};

/** One of the two steps' endpoints: `describe` (the MLLM) or `instruct` (the LLM). */
const annotatorEndpoint = z.strictObject({
  /** Defaults to `annotate.openai.base_url`. */
  base_url: z.string().min(1).optional(),
  /** Defaults to `mllm` (describe) or `llm`, then `mllm` (instruct). */
  model: z.string().min(1).optional(),
  /** Defaults to `annotate.openai.api_key_env`. */
  api_key_env: z.string().min(1).optional(),
  ...endpointLimits,
});

/** How `annotate.openai` sends by batch (mode: batch); none of it changes an annotation. */
const openaiBatch = z.strictObject({
  /** Wait between two looks at a unit's running batches. */
  poll_interval_s: z.number().positive().default(30),
  /** Requests an input file holds at most (OpenAI: 50,000). */
  max_requests_per_file: z.number().int().min(1).max(50_000).default(50_000),
  /** Size of an input file at most, in MB (OpenAI: 200). */
  max_file_mb: z.number().positive().max(200).default(200),
  /** Submissions of one request in all (the first included) when batches fail it in passing, expire or are cancelled. */
  attempts: z.number().int().min(1).max(20).default(3),
  /** A Batch API call failing in passing (unreachable, 429, 5xx) is tried again this long before the unit fails. */
  down_after_s: z.number().positive().default(1800),
  /** Batch price as a share of `price` (OpenAI: 0.5, half the online price). */
  price_factor: z.number().min(0).max(1).default(0.5),
  /** Hours a batch is expected to take, for `megapairs plan` (the completion window is 24). */
  expected_hours: z.number().positive().max(24).default(24),
});

const openaiAnnotator = z
  .strictObject({
    /** Base URL of an OpenAI-compatible server, e.g. http://vllm:8000/v1: the default of both endpoints. */
    base_url: z.string().min(1).optional(),
    /** Name of the environment variable that holds the API key (never the key itself). */
    api_key_env: z.string().default('OPENAI_API_KEY'),
    /** The multimodal model that describes the pair (InternVL2-26B in the paper). */
    mllm: z.string().min(1).optional(),
    /** The text model that writes instructions (Llama-3-8B in the paper); defaults to `mllm`. */
    llm: z.string().optional(),
    /** Per-step endpoints; each key unset here comes from the shared values above. */
    describe: annotatorEndpoint.prefault({}),
    instruct: annotatorEndpoint.prefault({}),
    /** WORD_NUM is drawn per call from this inclusive range. */
    word_num: z.tuple([z.number().int().min(1), z.number().int().min(1)]).default([60, 100]),
    /** A description may run this share over its WORD_NUM (0.5: up to 1.5 x WORD_NUM words). */
    word_num_tolerance: z.number().min(0).max(10).default(0.5),
    /** Demonstrations per instruction prompt, drawn from the pool. */
    demonstrations: z.number().int().min(0).max(50).default(5),
    min_instructions: z.number().int().min(1).default(3),
    /** Words per instruction, inclusive. */
    instruction_words: z
      .tuple([z.number().int().min(1), z.number().int().min(1)])
      .refine(([lo, hi]) => lo <= hi, 'instruction_words must be [min, max] with min <= max')
      .default([2, 40]),
    /** Ask for the instruction list as JSON-schema structured output (dropped when a server refuses it). */
    structured_output: z.boolean().default(true),
    /** Side of the images sent to the MLLM (they go as JPEG data URLs). */
    image_size: z.number().int().min(64).max(2048).default(512),
    temperature: z.number().min(0).max(2).default(0.7),
    max_tokens: z.number().int().min(16).default(512),
    concurrency: z.number().int().min(1).max(4096).default(8),
    requests_per_s: endpointLimits.requests_per_s,
    tokens_per_min: endpointLimits.tokens_per_min,
    /** One request, from sending to the whole reply (queueing for a slot not included). */
    timeout_ms: z.number().int().min(100).default(60_000),
    /** Attempts per call, including the first, for malformed replies and errors of the request itself (4xx, 5xx). */
    attempts: z.number().int().min(1).max(20).default(3),
    /** An endpoint unreachable this long fails the unit (to be retried); its pairs are never ledgered for it. */
    down_after_s: z.number().positive().default(600),
    /** While an endpoint is unreachable, one probe request this often. */
    retry_every_s: z.number().positive().default(10),
    /** USD per million tokens, per model name: gives `cost_usd` in summary.json. */
    price: z.record(z.string(), z.strictObject({ prompt: z.number().min(0), completion: z.number().min(0) })).optional(),
    /**
     * `online`: a request per call, answered at once. `batch`: a unit's requests go in Batch API
     * files (OpenAI, vLLM, hosted providers), at the batch price, answered within the completion
     * window. Either way the same requests and the same request cache: it changes no annotation.
     */
    mode: z.enum(['online', 'batch']).default('online'),
    batch: openaiBatch.prefault({}),
  })
  .refine((o) => o.describe.base_url ?? o.base_url, { message: 'needs `base_url` (or `describe.base_url`)', path: ['base_url'] })
  .refine((o) => o.instruct.base_url ?? o.base_url, { message: 'needs `base_url` (or `instruct.base_url`)', path: ['base_url'] })
  .refine((o) => o.describe.model ?? o.mllm, { message: 'needs `mllm` (or `describe.model`)', path: ['mllm'] });

/**
 * The `annotate` section: `annotator` names one of the backends (the first by default); a backend
 * that takes settings has its section under its name, required when it is the one named.
 */
export function annotateSchema<const N extends readonly [string, ...string[]], S extends Record<string, z.ZodOptional>>(names: N, sections: S) {
  return z
    .strictObject({ annotator: z.enum(names).default(names[0] as never), ...sections })
    .superRefine((value, ctx) => {
      const a = value as Record<string, unknown> & { annotator: string };
      if (a.annotator in sections && a[a.annotator] === undefined)
        ctx.addIssue({ code: 'custom', message: `annotator "${a.annotator}" needs its \`${a.annotator}:\` section`, path: [a.annotator] });
    })
    .prefault({} as never);
}

/**
 * The annotator backends (src/annotate/backends.ts implements each), by their name in
 * `annotate.annotator`, and the sections of those that take settings. A new backend: its name
 * here, and its section if it takes one.
 */
export const ANNOTATOR_NAMES = ['template', 'openai'] as const;
const annotatorSections = {
  openai: openaiAnnotator.optional(),
};

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

const MiB = 1024 * 1024;

/** Byte caps on a sample's tar members: far above any real corpus's, they bound what one member can cost. */
export const memberCaps = z
  .strictObject({
    caption: z.number().int().min(1).default(MiB).describe('bytes of a .txt caption member (default 1 MiB)'),
    json: z
      .number()
      .int()
      .min(1)
      .default(4 * MiB)
      .describe('bytes of a .json member (default 4 MiB)'),
    image: z
      .number()
      .int()
      .min(1)
      .optional()
      .describe('bytes of an image member (default: 4 bytes per pixel of input.max_pixels, 160 MB at its default, more than a raw RGBA image of that size)'),
  })
  .prefault({})
  .describe('Byte caps on tar members: a sample with a member over its cap is ledgered (member_too_large) without its bytes being read.');

export const configSchema = z.strictObject({
  run: z
    .strictObject({
      name: z
        .string()
        .regex(/^[A-Za-z0-9._-]+$/, 'letters, digits, ".", "_" and "-"')
        .default('megapairs'),
      seed: z.number().int().default(42),
      /** A complete run exits 0 only when no stage sent more than this share of its items to the ledger (else 3). */
      max_failure_share: z.number().min(0).max(1).default(0.05),
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
    /** A sample with a member over its cap is ledgered (member_too_large) and its bytes streamed past, never held. */
    max_member_bytes: memberCaps,
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
      /** onnxruntime execution providers, most preferred first, e.g. [cuda, cpu] or ["cuda:1", cpu] (default: $MEGAPAIRS_EXECUTION_PROVIDERS, else [cpu]); a plain cuda runs on the process's --gpu N ($MEGAPAIRS_GPU). Each must load, or the run fails at start. */
      execution_providers: z.array(z.string().min(1)).min(1).optional(),
      /** onnxruntime threads per session for one operator (0: onnxruntime's default, all cores). */
      intra_op_threads: z.number().int().min(0).max(256).default(0),
      /** onnxruntime threads per session across operators (0: onnxruntime's default). */
      inter_op_threads: z.number().int().min(0).max(256).default(0),
      /** onnxruntime's threads spin-wait for work between operators: a little faster alone, but they hold cores that decoding needs (default off). */
      spin_wait: z.boolean().default(false),
      /** Images decoded and preprocessed at once (worker threads; 0: one per core the machine has). */
      decode_threads: z.number().int().min(0).max(64).default(0),
      /** Ready batches queued ahead of inference per encoder (bounds memory). */
      prefetch_batches: z.number().int().min(1).max(64).default(2),
    })
    .prefault({}),
  embed: z
    .strictObject({
      /**
       * Element type of the stored vectors. float16 ('<f2') halves the embeddings' storage and the
       * bytes the index, search and recall stages read; they read it back as float32.
       */
      dtype: z.enum(['float32', 'float16']).default('float32'),
    })
    .prefault({}),
  index: z
    .strictObject({
      /** Images per HNSW index shard; a query is searched in every shard (or its probe_shards nearest) and the results merged. */
      shard_size: z.number().int().min(1).default(1_000_000),
      /**
       * 0: shards are ranges of image ids and every query searches every shard, so search work grows
       * with corpus x shards. N > 0: shards are cells of the embedding space (a k-means over a sample)
       * and a query searches only its N nearest, so the work per query stays that of N shards
       * whatever the corpus; the neighbours a query misses beyond them show in the measured recall.
       */
      probe_shards: z.number().int().min(0).default(0),
      /**
       * Routed shards only: an image is also indexed in its second nearest shard when its score
       * there (cosine similarity to the centroid, less the shard's balancing bias) is within this
       * much of its home shard's (0: its home only). Near a
       * cell's border, its neighbours are then found from either side: recall rises for more
       * vectors per shard (the search plan checks the larger shards against the memory budget).
       */
      shard_overlap: z.number().min(0).max(2).default(0),
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
        .refine(
          (a) => a.length === ENCODER_NAMES.length && new Set(a).size === a.length,
          `relation_priority must list each of ${ENCODER_NAMES.join(', ')} once`,
        )
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
  annotate: annotateSchema(ANNOTATOR_NAMES, annotatorSections),
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
      /** Distributed: times a unit may lose its worker (kill -9, a preempted node) before it fails; apart from `attempts`. */
      max_stalls: z.number().int().min(0).max(1000).default(20),
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
      prefix: z
        .string()
        .regex(/^[^:\s]+$/, 'no ":" or spaces')
        .default('megapairs'),
    })
    .prefault({}),
});

export type Config = z.infer<typeof configSchema> & {
  /**
   * Not a config key: the process's `--gpu N`, set by the CLI, the device of the device-indexed
   * execution provider (`cuda` becomes `cuda:N`); unset, $MEGAPAIRS_GPU gives it (encoders/sessions.ts).
   */
  gpu?: number;
};
export type ImageEncoderConfig = z.infer<typeof imageEncoder>;
export type TextEncoderConfig = z.infer<typeof textEncoder>;
export type S3Settings = z.infer<typeof s3Settings>;
export type OpenAIAnnotatorConfig = z.infer<typeof openaiAnnotator>;
export type AnnotatorEndpointConfig = z.infer<typeof annotatorEndpoint>;
