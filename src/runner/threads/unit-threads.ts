// The unit threads of a process (thread-pool.ts running unit-thread.ts), started on first use:
// the local runner hands them its threaded stages' units (hnswlib computes synchronously), the
// distributed worker every unit, so its main thread stays free to renew job locks.
import type { Config } from '../../config/schema.ts';
import type { MetricsSnapshot } from '../../metrics/registry.ts';
import type { UnitOutcome } from '../../core/stage-report.ts';
import { ThreadPool } from './thread-pool.ts';
import type { UnitTask } from './unit-thread.ts';

// Compiled (dist/), threads load the JavaScript; from the sources, an entry that registers tsx first.
const THREAD_ENTRY = new URL(import.meta.url.endsWith('.ts') ? './unit-thread-entry.mjs' : './unit-thread.js', import.meta.url);

export class UnitThreads {
  private pool?: Promise<ThreadPool<UnitTask, UnitOutcome>>;
  private started?: ThreadPool<UnitTask, UnitOutcome>;
  constructor(
    private readonly config: Config,
    readonly size: number,
  ) {}

  /** Starts the threads now (a worker does, to fail before it takes a job); otherwise the first run() does. */
  start(): Promise<ThreadPool<UnitTask, UnitOutcome>> {
    this.pool ??= (async () => {
      const pool = new ThreadPool<UnitTask, UnitOutcome>(THREAD_ENTRY, this.size, { config: this.config });
      await pool.start().catch(async (err: Error) => {
        await pool.abort();
        throw new Error(`cannot start unit threads: ${err.message}`);
      });
      this.started = pool;
      return pool;
    })();
    return this.pool;
  }

  async run(task: UnitTask): Promise<UnitOutcome> {
    return (await this.start()).run(task);
  }

  /** What the threads counted (metrics), for a metrics server. */
  metrics(): MetricsSnapshot[] {
    return this.started?.metrics() ?? [];
  }

  /** Ends the threads; a unit in hand rejects with AbortedError. */
  async close(): Promise<void> {
    if (this.pool) await (await this.pool.catch(() => undefined))?.abort();
  }
}
