// The local runner: one process, stages in order, up to `runner.concurrency` units of a stage at
// once. Units whose artifact is complete are skipped, which is all that resuming takes. Units of
// threaded stages (index builds and searches: hnswlib computes synchronously) run in the
// distributed runner's unit threads, so concurrency makes them faster too.
import type { Config } from '../config/schema.ts';
import { pipelineStages } from '../pipeline.ts';
import type { Stage, StageContext, UnitResult } from '../stages/stage.ts';
import { mapPool } from '../util/pool.ts';
import type { UnitJobResult } from './distributed/queues.ts';
import { ThreadPool } from './distributed/thread-pool.ts';
import type { UnitTask } from './distributed/unit-thread.ts';
import { ProgressReporter, type StageProgress } from './progress.ts';

const THREAD_ENTRY = new URL('./distributed/unit-thread-entry.mjs', import.meta.url);

/** Unit threads, started when a threaded stage first has a unit to run. */
export class LocalThreads {
  private pool?: Promise<ThreadPool<UnitTask, UnitJobResult>>;
  constructor(
    private readonly config: Config,
    private readonly size: number,
  ) {}

  async run(stage: Stage<any>, unit: unknown): Promise<UnitResult> {
    this.pool ??= (async () => {
      const pool = new ThreadPool<UnitTask, UnitJobResult>(THREAD_ENTRY, this.size, { config: this.config });
      await pool.start();
      return pool;
    })();
    return (await this.pool).run({ stage: stage.name, unit, final: false, where: 'local runner' });
  }

  async close(): Promise<void> {
    if (this.pool) await (await this.pool.catch(() => undefined))?.abort();
  }
}

export interface StageReport {
  stage: string;
  units: number;
  skipped: number;
  items: number;
  failed: number;
  seconds: number;
}

export class UnitError extends Error {
  constructor(
    readonly stage: string,
    readonly unit: string,
    cause: Error,
  ) {
    super(`${stage} ${unit} failed: ${cause.message}`, { cause });
    this.name = 'UnitError';
  }
}

export async function runStage(ctx: StageContext, stage: Stage<any>, concurrency: number, progress: ProgressReporter, threads?: LocalThreads): Promise<StageReport> {
  const p: StageProgress = { stage: stage.name, units: 0, done: 0, skipped: 0, items: 0, failed: 0, startedAt: Date.now() };
  const units = await stage.plan(ctx);
  p.units = units.length;
  progress.update(p);
  let firstError: UnitError | undefined;
  await mapPool(units, concurrency, async (unit) => {
    if (firstError) return; // stop starting units after a failure; let those in flight finish
    try {
      if (await stage.isDone(ctx, unit)) {
        p.skipped++;
      } else {
        const r = stage.threaded && threads ? await threads.run(stage, unit) : await stage.run(ctx, unit);
        p.items += r.items;
        p.failed += r.failed;
      }
      p.done++;
      progress.update(p);
    } catch (err) {
      firstError ??= new UnitError(stage.name, stage.unitId(unit), err as Error);
    }
  });
  progress.finish(p);
  if (firstError) throw firstError;
  return { stage: stage.name, units: p.units, skipped: p.skipped, items: p.items, failed: p.failed, seconds: (Date.now() - p.startedAt) / 1000 };
}

export async function runLocal(ctx: StageContext, opts: { progress?: ProgressReporter; stages?: Stage<any>[] } = {}): Promise<StageReport[]> {
  const progress = opts.progress ?? new ProgressReporter();
  const reports: StageReport[] = [];
  const concurrency = ctx.config.runner.concurrency;
  const threads = concurrency > 1 ? new LocalThreads(ctx.config, concurrency) : undefined;
  try {
    for (const stage of opts.stages ?? pipelineStages()) reports.push(await runStage(ctx, stage, concurrency, progress, threads));
  } finally {
    await threads?.close();
  }
  return reports;
}
