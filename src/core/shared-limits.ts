// Limits that every process of a run shares, as the runner provides them to the stages
// (StageContext.sharedLimits): a distributed run holds them in its Redis, so the concurrency,
// request rate and token budget of a model endpoint hold for all workers and threads together.
// A stage asks for the slots of a limit by its id; it never knows how or where they are kept.

/** One limited resource (a model endpoint): every process that names the same `id` shares it. */
export interface SharedLimit {
  /** Stable across processes, e.g. the endpoint's step and a digest of its server and model. */
  id: string;
  /** Requests in flight at once. */
  concurrency: number;
  requests_per_s?: number;
  tokens_per_min?: number;
  /** A slot whose holder has not released it after this long is free again (its holder died). */
  leaseMs: number;
}

export interface SharedLimits {
  /**
   * The slots of one limit. Whatever keeps them is reached on the first acquire: a failure to
   * reach it rejects that acquire (a fault of the environment: the unit fails and is retried).
   */
  slots(limit: SharedLimit): SharedSlots;
  /** Lets go of what keeps them (a connection), for a process that is done with the run. */
  close(): Promise<void>;
}

export interface SharedSlots {
  /** Resolves with a slot once the shared concurrency, requests/s, tokens/min and pause allow. */
  acquire(): Promise<SharedSlot>;
  /**
   * No process starts a request for `ms` (a 429 storm seen here). A duration, not a time: the
   * processes' clocks need not agree.
   */
  pause(ms: number): void;
}

export interface SharedSlot {
  release(): void;
  /** Counts a reply's tokens against the shared budget; also after release (a straggler's reply is paid for too). */
  charge(tokens: number): Promise<void>;
}
