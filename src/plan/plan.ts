// The plan itself: from the measured rates and sizes, the figures for a corpus of `images`
// images. Everything scales linearly with the image count except the index shards, which come in
// shards of index.shard_size (their count grows in steps, their memory per shard is bounded).
import type { AnnotationMode, Tokens } from '../annotate/backend.ts';
import { annotatorBackend } from '../annotate/backends.ts';
import { ENCODER_NAMES, type Config, type EncoderName } from '../config/schema.ts';
import { shardBytes } from '../knn/hnsw-shard.ts';
import { ROUTED_SHARD_CAPACITY } from '../knn/shard-router.ts';
import type { Measured, Source } from './measure.ts';

export type { Tokens };

export interface PlanInputs {
  images: number;
  imagesSource: string;
  /** Pairs mined per catalogued image. */
  pairsPerImage: { value: number; source: Source };
  /** Per request, by the kinds of request the annotator sends (the openai annotator's describe and instruct). */
  tokens: { describe: Tokens; instruct: Tokens; source: Source };
}

export interface Artifact {
  name: string;
  where: 'work' | 'output' | 'export';
  bytes: number;
}

export interface Plan {
  images: number;
  imagesSource: string;
  parts: number;
  artifacts: Artifact[];
  totalBytes: { work: number; output: number };
  embedding: Array<{ encoder: EncoderName; dim: number; perSecond: number; source: Source; hours: number }>;
  /** Decode and resize for every image encoder: core-hours, and hours on the decode threads a run on this machine gets. */
  preprocessing: { perCoreSecond: number; coreHours: number; threads: number; hours: number };
  /**
   * What sets the embed stage's pace: the device, whose encoders' sessions together take the sum of
   * their device-hours, or preprocessing on the decode threads. On the CPU provider both share the
   * cores, so their hours add up.
   */
  pace: { setBy: 'device' | 'preprocessing'; deviceHours: number; preprocessHours: number; sharedCores: boolean; hours: number };
  providers: string;
  index: {
    shards: number;
    shardSize: number;
    /** Shards of the same size grouped; memory of one loaded shard per encoder (shardBytes). */
    perShard: Array<{ shards: number; images: number; memoryBytes: Record<EncoderName, number> }>;
    budgetBytes: number;
  };
  annotation: {
    annotator: string;
    pairs: number;
    pairsSource: Source;
    /** By kind of request; none for an annotator that sends none. */
    requests: Record<string, number>;
    tokens: Record<string, Tokens>;
    tokensSource: Source;
    costUsd?: number;
    unpricedModels: string[];
    /** The config key that prices the models, for those unpriced. */
    priceKey?: string;
    /** Cost and expected wall time of each way the annotator can send (openai: online, batch). */
    modes?: Record<string, AnnotationMode>;
  };
}

export function planRun(config: Config, m: Measured, inputs: PlanInputs): Plan {
  const n = inputs.images;
  const imagesPerPart = m.corpus.images / Math.max(1, m.corpus.shards);
  const pairs = n * inputs.pairsPerImage.value;
  const embedding = ENCODER_NAMES.map((e) => {
    const r = m.encoders[e];
    return { encoder: e, dim: r.dim, perSecond: r.perSecond, source: r.source, hours: n / r.perSecond / 3600 };
  });
  // The three encoders' sessions share the device: their hours add up.
  const deviceHours = embedding.reduce((h, e) => h + e.hours, 0);
  const coreHours = n / m.preprocess.perCoreSecond / 3600;
  const preprocessing = { perCoreSecond: m.preprocess.perCoreSecond, coreHours, threads: m.preprocess.threads, hours: coreHours / m.preprocess.threads };
  const sharedCores = m.providers.split(', ')[0] === 'cpu';
  const vectorBytes = (e: EncoderName) => m.encoders[e].dim * (config.embed.dtype === 'float16' ? 2 : 4);
  const artifacts: Artifact[] = [
    { name: 'catalog', where: 'work', bytes: n * m.rowBytes.catalog },
    ...ENCODER_NAMES.map((e): Artifact => ({ name: `embeddings/${e}`, where: 'work', bytes: n * vectorBytes(e) })),
    { name: 'embeddings/mask', where: 'work', bytes: n },
    // Routed shards: each shard's rows copied out of the parts, for the index (members; at most 2
    // shards an image with an overlap) and for search (queries, in probe_shards shards each).
    ...(config.index.probe_shards > 0
      ? ENCODER_NAMES.flatMap((e): Artifact[] => {
          const vector = vectorBytes(e) + 4; // and its row number
          const overlap = config.index.shard_overlap > 0;
          return [
            { name: `assigned/${e}${overlap ? ' (at most)' : ''}`, where: 'work', bytes: n * vector * (overlap ? 2 : 1) },
            { name: `routed/${e}`, where: 'work', bytes: n * vector * config.index.probe_shards },
          ];
        })
      : []),
    ...ENCODER_NAMES.map((e): Artifact => ({ name: `index/${e}`, where: 'work', bytes: shardBytes(n, m.encoders[e].dim, config.index.m) })),
    { name: 'pairs', where: 'work', bytes: pairs * m.rowBytes.pairs },
    { name: 'annotations', where: 'work', bytes: pairs * m.rowBytes.annotations },
    { name: 'triples', where: 'output', bytes: pairs * m.rowBytes.triples },
    { name: 'triples/*.jsonl + megapairs.jsonl', where: 'output', bytes: 2 * pairs * m.rowBytes.jsonl },
    // At most every image is used by a triple; 512x512 JPEG as `megapairs export` writes them.
    { name: 'export images (at most)', where: 'export', bytes: n * m.sample.meanExportJpegBytes },
  ];
  const total = (where: Artifact['where']) => artifacts.filter((a) => a.where === where).reduce((s, a) => s + a.bytes, 0);

  const shardSize = config.index.shard_size;
  const shards = Math.max(1, Math.ceil(n / shardSize));
  const full = Math.floor(n / shardSize);
  const rest = n - full * shardSize;
  const memory = (count: number) =>
    Object.fromEntries(ENCODER_NAMES.map((e) => [e, shardBytes(count, m.encoders[e].dim, config.index.m)])) as Record<EncoderName, number>;
  // Routed shards are cells of the space, even to within the router's capacity (over an equal share).
  const routed = config.index.probe_shards > 0 && shards > 1 ? Math.min(n, Math.ceil((ROUTED_SHARD_CAPACITY * n) / shards)) : 0;
  const perShard = routed
    ? [{ shards, images: routed, memoryBytes: memory(routed) }]
    : [
        ...(full ? [{ shards: full, images: shardSize, memoryBytes: memory(shardSize) }] : []),
        ...(rest ? [{ shards: 1, images: rest, memoryBytes: memory(rest) }] : []),
      ];

  const { source: _, ...tokensPerRequest } = inputs.tokens;
  const estimate = annotatorBackend(config).estimate(config, { pairs, tokensPerRequest });

  return {
    images: n,
    imagesSource: inputs.imagesSource,
    parts: Math.max(1, Math.ceil(n / Math.max(1, imagesPerPart))),
    artifacts,
    totalBytes: { work: total('work'), output: total('output') },
    embedding,
    preprocessing,
    pace: {
      setBy: deviceHours >= preprocessing.hours ? 'device' : 'preprocessing',
      deviceHours,
      preprocessHours: preprocessing.hours,
      sharedCores,
      hours: sharedCores ? deviceHours + preprocessing.hours : Math.max(deviceHours, preprocessing.hours),
    },
    providers: m.providers,
    index: {
      shards,
      shardSize: routed || shardSize,
      perShard,
      budgetBytes: config.index.memory_budget_mb * 1024 * 1024,
    },
    annotation: {
      annotator: config.annotate.annotator,
      pairs,
      pairsSource: inputs.pairsPerImage.source,
      requests: estimate?.requests ?? {},
      tokens: estimate?.tokens ?? {},
      tokensSource: inputs.tokens.source,
      costUsd: estimate?.costUsd,
      unpricedModels: estimate?.unpriced.models ?? [],
      priceKey: estimate?.unpriced.key,
      modes: estimate?.modes,
    },
  };
}
