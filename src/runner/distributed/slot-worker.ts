// A worker process serves many queues (one BullMQ Worker each) with one pool of threads. Each
// Worker alone would take up to its concurrency in jobs, so a process would hold up to queues x
// threads jobs, most of them waiting for a thread: a kill -9 strands them all until their locks
// lapse, and an idle process cannot take a job queued behind another's long unit. Here the
// Workers share the threads as slots: a Worker moves a job to active only once it holds a free
// slot, so a process holds at most one job per thread, each of them running.
import { Worker, type Job, type Processor, type WorkerOptions } from 'bullmq';

/** The process's free threads, shared by its queue Workers. */
export class Slots {
  private waiters: Array<{ owner: object; resolve: (got: boolean) => void }> = [];
  constructor(private free: number) {}

  tryAcquire(): boolean {
    if (this.free <= 0) return false;
    this.free--;
    return true;
  }

  /** Resolves true with a slot, or false when the owner gives up waiting (it is closing). */
  acquire(owner: object): Promise<boolean> {
    if (this.tryAcquire()) return Promise.resolve(true);
    return new Promise((resolve) => this.waiters.push({ owner, resolve }));
  }

  release(): void {
    const next = this.waiters.shift();
    if (next) next.resolve(true);
    else this.free++;
  }

  /** Ends the owner's waits (a Worker closing): each resolves false. */
  cancel(owner: object): void {
    for (const w of this.waiters.filter((x) => x.owner === owner)) w.resolve(false);
    this.waiters = this.waiters.filter((x) => x.owner !== owner);
  }
}

type Client = Parameters<Worker['moveToActive']>[0];

/**
 * A BullMQ Worker that takes a job (moves it to active, locking it) only with a slot in hand, and
 * gives the slot back when the job is finished. It never fetches the next job as it completes one
 * (BullMQ's fetch-next), so every job goes through moveToActive and its slot.
 */
export class SlotWorker<D = unknown, R = unknown> extends Worker<D, R> {
  constructor(
    name: string,
    processor: Processor<D, R>,
    opts: WorkerOptions,
    private readonly slots: Slots,
  ) {
    super(name, processor, opts);
    this.on('closing', () => slots.cancel(this));
  }

  protected override async moveToActive(client: Client, token: string, name?: string): Promise<Job<D, R>> {
    if (!this.slots.tryAcquire()) {
      // Waiting for a thread, not for a job: BullMQ's main loop starts the jobs it holds meanwhile
      // only while `waiting` is set (it is private in BullMQ 5, hence the cast).
      const self = this as unknown as { waiting: Promise<unknown> | null };
      const wait = this.slots.acquire(this);
      const mine = self.waiting === null;
      if (mine) self.waiting = wait;
      try {
        if (!(await wait)) return undefined as unknown as Job<D, R>;
      } finally {
        if (mine && self.waiting === wait) self.waiting = null;
      }
    }
    let job: Job<D, R> | undefined;
    try {
      job = await super.moveToActive(client, token, name);
    } finally {
      if (!job) this.slots.release();
    }
    return job;
  }

  override async processJob(job: Job<D, R>, token: string): Promise<Job<D, R> | undefined> {
    try {
      return (await super.processJob(job, token, () => false)) || undefined;
    } finally {
      this.slots.release();
    }
  }
}
