// What the units of one process share, as `shared(ctx)`: each member is loaded on first use and
// kept, and a failed load is forgotten so a later unit loads it again. A set of resources belongs
// to one config and one set of artifact keys: a new one is made when the context's keys change,
// so nothing loaded under other keys is served. Every member's source is named here.
import type { Layout } from '../core/layout.ts';
import type { StageKeys } from '../core/keys.ts';
import type { Annotator } from '../annotate/annotator.ts';
import type { AnnotatorBackend } from '../annotate/backend.ts';
import { AnnotateProgress } from '../annotate/progress.ts';
import type { Config, EncoderName } from '../config/schema.ts';
import { openEncoderThreads, type EncoderThreads } from '../encoders/encoder-thread.ts';
import { ShardRouter } from '../knn/shard-router.ts';
import { Lazy, LazyMap } from '../util/lazy.ts';
import type { ShardMeta } from './shard-plan.ts';
import { readManifest, type CatalogManifest } from './manifest.ts';
import type { StageContext } from '../core/stage.ts';

export class SharedResources {
  private readonly manifestFile: Lazy<Promise<CatalogManifest>>;
  private readonly shardMetas: LazyMap<{ encoder: EncoderName; shard: number }, Promise<ShardMeta>>;
  private readonly routers: LazyMap<EncoderName, Promise<ShardRouter>>;
  private readonly sessions: Lazy<Promise<EncoderThreads>>;
  private readonly annotators: LazyMap<AnnotatorBackend, Promise<Annotator>>;
  private readonly progress = new Lazy(() => new AnnotateProgress());

  /** `layout` is the keys' own: a load still in flight when the context's keys change reads the old keys' artifacts, never the new. */
  constructor(ctx: StageContext, layout: Layout) {
    this.manifestFile = new Lazy(() => readManifest({ work: ctx.work, layout }));
    this.shardMetas = new LazyMap(
      async ({ encoder, shard }) => JSON.parse((await ctx.work.read(layout.indexShardMeta(encoder, shard))).toString('utf8')) as ShardMeta,
      ({ encoder, shard }) => `${encoder}:${shard}`,
    );
    this.routers = new LazyMap(async (encoder) => ShardRouter.fromJSON(JSON.parse((await ctx.work.read(layout.shardRouter(encoder))).toString('utf8'))));
    this.sessions = new Lazy(() => openEncoderThreads(ctx.config, ctx.cacheDir));
    this.annotators = new LazyMap(
      (backend) => backend.open(ctx.config, { work: ctx.work, sharedLimits: ctx.sharedLimits, env: process.env }),
      (backend) => backend.name,
    );
  }

  /** The catalog manifest (manifest.ts): every stage after it consults it in every unit. */
  manifest(): Promise<CatalogManifest> {
    return this.manifestFile.get();
  }

  /** A complete index shard's metadata (index-build.ts writes it): search, recall and mining ask for it in every unit. */
  shardMeta(u: { encoder: EncoderName; shard: number }): Promise<ShardMeta> {
    return this.shardMetas.get(u);
  }

  /** A space's shard router (partition.ts writes it, when shards are routed): assign, route and recall ask for it in every unit. */
  shardRouter(encoder: EncoderName): Promise<ShardRouter> {
    return this.routers.get(encoder);
  }

  /** The three encoders, each on its thread with its session, opened once: embed runs every unit through them. */
  encoders(): Promise<EncoderThreads> {
    return this.sessions.get();
  }

  /** The backend's annotator: its clients serve every unit; its limits are process-wide, or run-wide where the runner shares them (ctx.sharedLimits). */
  annotator(backend: AnnotatorBackend): Promise<Annotator> {
    return this.annotators.get(backend);
  }

  /** The progress line of the annotate units this process runs. */
  annotateProgress(): AnnotateProgress {
    return this.progress.get();
  }
}

// By keys, then config: a copy of a context (`{ ...ctx, work }`) shares its resources, as the same
// run's units do; another config, or the same one under other keys, gets its own.
const byKeys = new WeakMap<StageKeys, WeakMap<Config, SharedResources>>();

/** The resources the context's units share under its current keys. */
export function shared(ctx: StageContext): SharedResources {
  const layout = ctx.layout; // throws until the keys are resolved
  const keys = ctx.keys!;
  let byConfig = byKeys.get(keys);
  if (!byConfig) byKeys.set(keys, (byConfig = new WeakMap()));
  let resources = byConfig.get(ctx.config);
  if (!resources) byConfig.set(ctx.config, (resources = new SharedResources(ctx, layout)));
  return resources;
}
