// The local runner: one process, stages in order, up to `runner.concurrency` units of a stage at
// once. Units whose artifact is complete are skipped, which is all that resuming takes. A unit
// that fails is named in the ledger (reason unit_failed, retryable), and the entry is cleared
// when the unit later succeeds, as in the distributed runner. Units of threaded stages (index
// builds and searches: hnswlib computes synchronously) run in the distributed runner's unit
// threads, so concurrency makes them faster too.
import type { Config } from '../config/schema.ts';
import { pipelineStages } from '../pipeline.ts';
import { stageReason, stageStatus, type StageStatus } from '../provenance/explain.ts';
import { resolveRun, type ResolvedRun } from '../provenance/resolve-run.ts';
import type { StageKeys } from '../provenance/stage-keys.ts';
import { describeError } from '../util/error-chain.ts';
import { clearUnitFailure, recordUnitFailure } from './distributed/unit-failure.ts';
import type { Stage, StageContext, UnitResult } from '../stages/stage.ts';
import { mapPool } from '../util/pool.ts';
import type { UnitJobResult } from './distributed/queues.ts';
import { ThreadPool } from './distributed/thread-pool.ts';
import type { UnitTask } from './distributed/unit-thread.ts';
import { ProgressReporter, type StageProgress } from './progress.ts';

// Compiled (dist/), threads load the JavaScript; from the sources, an entry that registers tsx first.
const THREAD_ENTRY = new URL(import.meta.url.endsWith('.ts') ? './distributed/unit-thread-entry.mjs' : './distributed/unit-thread.js', import.meta.url);

/** Unit threads, started when a threaded stage first has a unit to run. */
export class LocalThreads {
  private pool?: Promise<ThreadPool<UnitTask, UnitJobResult>>;
  constructor(
    private readonly config: Config,
    private readonly size: number,
  ) {}

  async run(stage: Stage<any>, unit: unknown, keys: StageKeys): Promise<UnitResult> {
    this.pool ??= (async () => {
      const pool = new ThreadPool<UnitTask, UnitJobResult>(THREAD_ENTRY, this.size, { config: this.config });
      await pool.start();
      return pool;
    })();
    return (await this.pool).run({ stage: stage.name, unit, keys });
  }

  async close(): Promise<void> {
    if (this.pool) await (await this.pool.catch(() => undefined))?.abort();
  }
}

export interface StageReport {
  stage: string;
  /** The stage's provenance key, whether it reused its artifacts or computed them, and why. */
  key?: string;
  status?: StageStatus;
  reason?: string;
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
    super(`${stage} ${unit} failed: ${describeError(cause)}`, { cause });
    this.name = 'UnitError';
  }
}

export async function runStage(
  ctx: StageContext,
  stage: Stage<any>,
  concurrency: number,
  progress: ProgressReporter,
  threads?: LocalThreads,
): Promise<StageReport> {
  const p: StageProgress = { stage: stage.name, units: 0, done: 0, skipped: 0, items: 0, failed: 0, startedAt: Date.now() };
  const units = await stage.plan(ctx);
  p.units = units.length;
  progress.update(p);
  let firstError: UnitError | undefined;
  await mapPool(units, concurrency, async (unit) => {
    if (firstError) return; // stop starting units after a failure; let those in flight finish
    const unitId = stage.unitId(unit);
    try {
      if (await stage.isDone(ctx, unit)) {
        p.skipped++;
      } else {
        const r = stage.threaded && threads ? await threads.run(stage, unit, ctx.keys!) : await stage.run(ctx, unit);
        p.items += r.items;
        p.failed += r.failed;
      }
      await clearUnitFailure(ctx, stage.name, unitId);
      p.done++;
      progress.update(p);
    } catch (err) {
      const failure = new UnitError(stage.name, unitId, err as Error);
      firstError ??= failure;
      await recordUnitFailure(ctx, stage.name, unitId, `${stage.name} ${unitId}`, 'unit_failed', describeError(err)).catch(() => {});
    }
  });
  progress.finish(p);
  if (firstError) throw firstError;
  return { stage: stage.name, units: p.units, skipped: p.skipped, items: p.items, failed: p.failed, seconds: (Date.now() - p.startedAt) / 1000 };
}

/** Runs every stage under the run's keys (resolved here unless `resolved` is given) and says per stage what it reused. */
export async function runLocal(
  ctx: StageContext,
  opts: { progress?: ProgressReporter; stages?: Stage<any>[]; resolved?: ResolvedRun } = {},
): Promise<StageReport[]> {
  const progress = opts.progress ?? new ProgressReporter();
  const stages = opts.stages ?? pipelineStages();
  const run = opts.resolved ?? (await resolveRun(ctx, { record: true }));
  const reports: StageReport[] = [];
  const concurrency = ctx.config.runner.concurrency;
  const threads = concurrency > 1 ? new LocalThreads(ctx.config, concurrency) : undefined;
  try {
    for (const stage of stages) {
      const r = await runStage(ctx, stage, concurrency, progress, threads);
      const now = run.provenance[stage.name];
      const status = stageStatus(r.units, r.skipped);
      reports.push({ ...r, key: now?.key, status, reason: now && stageReason(status, run.previous?.stages[stage.name], now, r.units, r.skipped) });
    }
  } finally {
    await threads?.close();
  }
  return reports;
}
