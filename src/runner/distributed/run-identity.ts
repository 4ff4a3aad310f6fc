// One identity for a distributed run: its name plus its key (the chained provenance of every
// stage). `megapairs run` publishes the run it started in Redis, with each stage's provenance and
// the ids of its work and output storage; a worker checks its own config against that before it
// takes any job and refuses to start (exit 2) when it would write other artifacts: another
// `mine.k`, another model file, another work storage. Paths may differ between nodes: storage is
// compared by its marker's id, models by their content.
import type { Redis } from 'ioredis';
import { changesSince } from '../../provenance/explain.ts';
import type { StageKeys } from '../../core/keys.ts';
import { resolveProvenance, type RunProvenance, keysOf } from '../../provenance/stage-keys.ts';
import { readStorageId, storageMarker } from '../../provenance/storage-identity.ts';
import type { Config } from '../../config/schema.ts';
import type { StageContext } from '../../core/stage.ts';

export interface PublishedRun {
  run: string;
  key: string;
  stages: RunProvenance;
  storage: { work: string; output: string };
  /** The provenance of the run of this name recorded before it, to say what changed. */
  previous?: RunProvenance;
  publishedAt: string;
}

/** A worker whose config would write artifacts other than the run's: refused at start, exit 2. */
export class RunMismatchError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RunMismatchError';
  }
}

/** The Redis key holding the published run of this config's name. */
export const publishedRunKey = (config: Config) => `${config.redis.prefix}:${config.run.name}:published-run`;

export async function publishRun(connection: Redis, config: Config, run: PublishedRun): Promise<void> {
  await connection.set(publishedRunKey(config), JSON.stringify(run));
}

export async function readPublishedRun(connection: Redis, config: Config): Promise<PublishedRun | undefined> {
  const text = await connection.get(publishedRunKey(config));
  return text ? (JSON.parse(text) as PublishedRun) : undefined;
}

/**
 * What keeps this process's config from serving the published run: its stages' provenance
 * compared with the run's (the values that differ, by config path) and its storage ids.
 */
export async function disagreements(ctx: StageContext, run: PublishedRun): Promise<string[]> {
  const problems: string[] = [];
  for (const [name, storage] of [
    ['work', ctx.work],
    ['output', ctx.output],
  ] as const) {
    const id = await readStorageId(storage);
    if (id !== run.storage[name]) {
      problems.push(
        `${name}: ${storage.root} is not the run's ${name} storage (${id ? `its marker ${storageMarker(storage)} holds another id` : `no marker at ${storageMarker(storage)}`})`,
      );
    }
  }
  const own = await resolveProvenance(ctx, ctx.stages);
  for (const [stage, p] of Object.entries(own)) {
    const theirs = run.stages[stage];
    if (!theirs) problems.push(`${stage}: the run has no such stage`);
    else if (theirs.key !== p.key)
      problems.push(
        ...changesSince(theirs, p)
          .filter((c) => !c.endsWith(' changed'))
          .map((c) => `${stage}: ${c}`),
      );
  }
  return [...new Set(problems)];
}

/** The published run this worker may serve: waits for one to be published, refuses one it disagrees with. */
export async function acceptRun(
  connection: Redis,
  ctx: StageContext,
  log: (line: string) => void,
  pollMs = 1000,
): Promise<{ key: string; keys: StageKeys; published: PublishedRun }> {
  const config = ctx.config;
  let run = await readPublishedRun(connection, config);
  if (!run) log(`waiting for \`megapairs run\` to start run ${config.run.name}`);
  while (!run) {
    await new Promise((r) => setTimeout(r, pollMs));
    run = await readPublishedRun(connection, config);
  }
  const problems = await disagreements(ctx, run);
  if (problems.length) {
    throw new RunMismatchError(
      `this worker's config differs from run ${config.run.name} (key ${run.key}) in what decides its artifacts (the run's value -> this worker's):\n  ${problems.join('\n  ')}\n` +
        'start workers with the config the run was started with',
    );
  }
  return { key: run.key, keys: keysOf(run.stages), published: run };
}
