// The run a worker serves, and its switch to a newer one: a `megapairs run` with a changed config
// publishes a new run, whose jobs a worker takes once its own config agrees with that run's.
import { WaitingError, type Job } from 'bullmq';
import type { StageContext } from '../../core/stage.ts';
import { acceptRun, readPublishedRun } from './run-identity.ts';
import type { RunQueues } from './queues.ts';

type Accepted = Awaited<ReturnType<typeof acceptRun>>;

export class ServedRun {
  private accepted!: Accepted;
  private refuse!: (err: Error) => void;
  /** Rejects with a RunMismatchError once a newer run is published with a config this worker disagrees with. */
  readonly refused: Promise<never>;

  /** Sets the queues' and the context's keys to the accepted run's. */
  constructor(
    private readonly ctx: StageContext,
    private readonly rq: RunQueues,
    accepted: Accepted,
    private readonly log: (line: string) => void,
  ) {
    this.use(accepted);
    this.refused = new Promise<never>((_, reject) => (this.refuse = reject));
    this.refused.catch(() => {});
  }

  /** The key of the run served. */
  get key(): string {
    return this.accepted.key;
  }

  get keys(): Accepted['keys'] {
    return this.accepted.keys;
  }

  /** The run as it was published when this worker accepted it. */
  get published(): Accepted['published'] {
    return this.accepted.published;
  }

  /**
   * Whether the job belongs to the run this worker serves. A job of a newer run (restarted with a
   * changed config) is served once this worker's config is checked against it; if it disagrees,
   * the job goes back and the worker refuses (it never fails the job). A job of a superseded run
   * is not run at all.
   */
  async serves(job: Job<{ run: string }>, token?: string): Promise<boolean> {
    if (job.data.run === this.accepted.key) return true;
    const published = await readPublishedRun(this.rq.connection, this.ctx.config);
    if (published?.key !== job.data.run) return false;
    try {
      this.use(await acceptRun(this.rq.connection, this.ctx, this.log));
      return true;
    } catch (err) {
      await job.moveToWait(token);
      this.refuse(err as Error);
      throw new WaitingError();
    }
  }

  private use(accepted: Accepted): void {
    this.accepted = accepted;
    this.rq.run = { key: accepted.key, keys: accepted.keys };
    this.ctx.keys = accepted.keys;
  }
}
