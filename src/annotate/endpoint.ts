// One model endpoint as every unit and thread of a process shares it: a queue that starts requests
// only within the endpoint's limits (concurrency, requests/s, tokens/min), slows the whole
// endpoint on a 429 or Retry-After, and opens a circuit when the endpoint stops answering. While
// the circuit is open, requests wait and one probe goes every `retry_every_s`; past
// `down_after_s` the waiting requests fail with EndpointDownError, a fault of the environment
// that fails the unit (to be retried), never the pairs. In a distributed run the limits and a 429
// storm's pause are also shared with the other processes (SharedSlots, which the runner keeps).
import type { SharedSlot, SharedSlots } from '../core/shared-limits.ts';
import type { EndpointSettings } from './endpoint-settings.ts';

/** How one request ended, as the endpoint needs to know it. */
export type Outcome =
  | { kind: 'ok'; latencyMs: number; tokens: number }
  | { kind: 'unreachable'; cause: string }
  | { kind: 'timeout'; cause: string }
  | { kind: 'rate_limited'; retryAfterMs?: number }
  | { kind: 'server_error'; cause: string }
  | { kind: 'client_error' }
  | { kind: 'aborted' };

/** The endpoint did not answer for `down_after_s`: the unit fails and is retried later. */
export class EndpointDownError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EndpointDownError';
  }
}

export interface EndpointOptions {
  downAfterMs: number;
  retryEveryMs: number;
  /** Where the circuit's lines go ("... unreachable since ...", "... answering again"). */
  log?: (line: string) => void;
  /**
   * The endpoint's limits shared with other processes and threads (distributed runs). This class
   * still decides every start; a start also waits for a shared slot.
   */
  shared?: SharedSlots;
}

export interface Lease {
  /** Frees the slot without an outcome (a straggler whose copy takes over); idempotent. */
  release(): void;
  /** Records how the request ended and frees the slot. */
  finish(outcome: Outcome): void;
}

export interface EndpointStats {
  requests: number;
  cached: number;
  errors: Record<string, number>;
  prompt_tokens: number;
  completion_tokens: number;
}

interface Waiter {
  resolve: (lease: Lease) => void;
  reject: (err: Error) => void;
}

/** Consecutive timeouts or 5xx replies, endpoint-wide, that open the circuit. */
const FAILURE_STREAK_OPENS = 5;
/** Without Retry-After, a 429 pauses the endpoint 0.5 s, doubling per 429 in a row, up to 30 s. */
const PAUSE_BASE_MS = 500;
const PAUSE_MAX_MS = 30_000;
const LATENCY_SAMPLES = 256;
const STRAGGLER_MIN_MS = 500;
const RECENT_OUTCOMES = 50;

export class Endpoint {
  readonly stats: EndpointStats = { requests: 0, cached: 0, errors: {}, prompt_tokens: 0, completion_tokens: 0 };
  private readonly queue: Waiter[] = [];
  private active = 0;
  /** The concurrency in force: 10% less per 429, one more per success, up to the setting. */
  private limit: number;
  /** The last outcomes, true for a 429: a storm is when they are over a fifth of them. */
  private readonly recent: boolean[] = [];
  private nextStartAt = 0;
  private tokenBalance: number;
  private tokenAt = Date.now();
  private pausedUntil = 0;
  private rateLimitedInARow = 0;
  private failureStreak = 0;
  private down?: { since: number; cause: string; nextProbeAt: number; probing: boolean };
  private timer?: NodeJS.Timeout;
  private readonly latencies: number[] = [];
  private latencyNext = 0;
  private stragglerAt?: number;
  private samplesSinceStraggler = 0;
  private sharedWaiting = false;

  constructor(
    readonly settings: EndpointSettings,
    private readonly opts: EndpointOptions,
  ) {
    this.limit = settings.concurrency;
    this.tokenBalance = settings.tokens_per_min ?? 0;
  }

  get inFlight(): number {
    return this.active;
  }

  /** Whether the circuit is open (the endpoint is not answering). */
  get isDown(): boolean {
    return this.down !== undefined;
  }

  /** A slot to send one request in, when the limits allow; EndpointDownError past down_after_s. */
  acquire(): Promise<Lease> {
    return new Promise((resolve, reject) => {
      this.queue.push({ resolve, reject });
      this.pump();
    });
  }

  /**
   * How long a request may run before it counts as a straggler and a copy is sent: twice the 95th
   * percentile of the latencies seen (at least 0.5 s), at most `timeoutMs`; 10 s until enough
   * replies are seen. Tied to the tail, not the median, so a server whose replies vary in length
   * gets few copies, while a hung request holds its slot little longer than the slowest replies.
   */
  stragglerAfterMs(timeoutMs: number): number {
    if (this.latencies.length < 16) return Math.min(timeoutMs, 10_000);
    // The percentile is sorted out again after every 16 new samples, not for every request.
    if (this.stragglerAt === undefined || this.samplesSinceStraggler >= 16) {
      const sorted = [...this.latencies].sort((a, b) => a - b);
      this.stragglerAt = Math.max(STRAGGLER_MIN_MS, 2 * sorted[Math.floor(sorted.length * 0.95)]);
      this.samplesSinceStraggler = 0;
    }
    return Math.min(timeoutMs, this.stragglerAt);
  }

  private pump(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (!this.queue.length) return;
    const now = Date.now();
    if (this.down) return this.pumpWhileDown(now);
    while (this.queue.length && this.active < Math.floor(this.limit)) {
      const wait = this.waitMs(now);
      if (wait > 0) return this.wake(wait);
      if (this.opts.shared) return this.startShared();
      this.grant(now);
    }
  }

  /** One probe when due; past down_after_s everything else waiting fails. */
  private pumpWhileDown(now: number): void {
    const down = this.down!;
    if (!down.probing && now >= down.nextProbeAt && this.active < this.limit) {
      down.probing = true;
      this.grant(now);
    }
    if (now - down.since >= this.opts.downAfterMs) {
      const err = new EndpointDownError(`${this.describeDown(down)}, for more than ${this.opts.downAfterMs / 1000} s (annotate.openai.down_after_s)`);
      for (const w of this.queue.splice(0)) w.reject(err);
      return;
    }
    if (this.queue.length) this.wake(Math.min(down.nextProbeAt, down.since + this.opts.downAfterMs) - now);
  }

  /** Milliseconds until the pause, the request rate and the token budget all allow a start. */
  private waitMs(now: number): number {
    let wait = this.pausedUntil - now;
    const rps = this.settings.requests_per_s;
    if (rps) wait = Math.max(wait, this.nextStartAt - now);
    const tpm = this.settings.tokens_per_min;
    if (tpm) {
      this.refillTokens(now, tpm);
      if (this.tokenBalance <= 0) wait = Math.max(wait, Math.ceil((-this.tokenBalance + 1) / (tpm / 60_000)));
    }
    return wait;
  }

  private refillTokens(now: number, tpm: number): void {
    this.tokenBalance = Math.min(tpm, this.tokenBalance + ((now - this.tokenAt) * tpm) / 60_000);
    this.tokenAt = now;
  }

  private wake(ms: number): void {
    this.timer = setTimeout(() => this.pump(), Math.max(1, ms));
  }

  /** Distributed: one start at a time waits for a shared slot, then is granted. */
  private startShared(): void {
    if (this.sharedWaiting) return;
    this.sharedWaiting = true;
    this.opts.shared!.acquire().then(
      (slot) => {
        this.sharedWaiting = false;
        if (this.queue.length && !this.down) this.grant(Date.now(), slot);
        else slot.release();
        this.pump();
      },
      (err: Error) => {
        this.sharedWaiting = false;
        for (const w of this.queue.splice(0)) w.reject(err);
      },
    );
  }

  private grant(now: number, shared?: SharedSlot): void {
    const waiter = this.queue.shift()!;
    this.active++;
    this.stats.requests++;
    const rps = this.settings.requests_per_s;
    if (rps) this.nextStartAt = Math.max(now, this.nextStartAt) + 1000 / rps;
    let held = true;
    const release = () => {
      if (!held) return;
      held = false;
      this.active--;
      shared?.release();
      this.pump();
    };
    waiter.resolve({ release, finish: (outcome) => (this.record(outcome, shared), release()) });
  }

  private record(outcome: Outcome, shared?: SharedSlot): void {
    const now = Date.now();
    if (outcome.kind !== 'ok' && outcome.kind !== 'aborted') this.stats.errors[outcome.kind] = (this.stats.errors[outcome.kind] ?? 0) + 1;
    switch (outcome.kind) {
      case 'ok':
        this.failureStreak = 0;
        this.rateLimitedInARow = 0;
        this.limit = Math.min(this.settings.concurrency, this.limit + 1);
        this.remember(false);
        this.latencies[this.latencyNext] = outcome.latencyMs;
        this.latencyNext = (this.latencyNext + 1) % LATENCY_SAMPLES;
        this.samplesSinceStraggler++;
        if (this.settings.tokens_per_min) {
          this.refillTokens(now, this.settings.tokens_per_min);
          this.tokenBalance -= outcome.tokens;
          void shared?.charge(outcome.tokens); // before the slot is freed: see sharedSlots
        }
        return this.answered();
      case 'client_error':
      case 'rate_limited':
        if (outcome.kind === 'rate_limited') this.slowDown(now, outcome.retryAfterMs);
        this.failureStreak = 0;
        return this.answered(); // it answered: the endpoint is up
      case 'unreachable':
        return this.open(now, outcome.cause);
      case 'timeout':
      case 'server_error':
        if (++this.failureStreak >= FAILURE_STREAK_OPENS || this.down) this.open(now, outcome.cause);
        return;
      case 'aborted':
        if (this.down?.probing) this.down.probing = false; // a cancelled probe: the next one goes
        return;
    }
  }

  /**
   * A 429 slows the whole endpoint: 10% less concurrency each (grown back by one per success), and
   * in a storm (over a fifth of the last outcomes) no request starts until its Retry-After (else
   * 0.5 s, doubling) has passed, in every process sharing the endpoint. The request itself always
   * waits its Retry-After before retrying.
   */
  private slowDown(now: number, retryAfterMs: number | undefined): void {
    this.limit = Math.max(1, this.limit * 0.9);
    this.remember(true);
    const pause = retryAfterMs ?? Math.min(PAUSE_MAX_MS, PAUSE_BASE_MS * 2 ** this.rateLimitedInARow);
    this.rateLimitedInARow++;
    const limited = this.recent.filter(Boolean).length;
    if (limited * 5 > this.recent.length && this.recent.length >= 10) {
      this.pausedUntil = Math.max(this.pausedUntil, now + pause);
      this.opts.shared?.pause(pause);
    }
  }

  private remember(rateLimited: boolean): void {
    this.recent.push(rateLimited);
    if (this.recent.length > RECENT_OUTCOMES) this.recent.shift();
  }

  private answered(): void {
    if (!this.down) return;
    const down = this.down;
    this.down = undefined;
    this.failureStreak = 0;
    this.opts.log?.(
      `${this.settings.step} endpoint ${this.settings.base_url} answering again after ${((Date.now() - down.since) / 1000).toFixed(0)} s; resuming`,
    );
  }

  private open(now: number, cause: string): void {
    if (this.down) {
      if (this.down.probing) {
        this.down.probing = false;
        this.down.nextProbeAt = now + this.opts.retryEveryMs;
      }
      return;
    }
    this.down = { since: now, cause, nextProbeAt: now + this.opts.retryEveryMs, probing: false };
    this.opts.log?.(`${this.describeDown(this.down)}; retrying every ${this.opts.retryEveryMs / 1000} s`);
  }

  private describeDown(down: { since: number; cause: string }): string {
    return `${this.settings.step} endpoint ${this.settings.base_url} unreachable since ${new Date(down.since).toISOString().slice(11, 19)} (${down.cause})`;
  }
}

const registry = new Map<string, Endpoint>();

/** The process-wide endpoint for these settings: every unit and annotator of a process shares it. */
export function endpointFor(settings: EndpointSettings, opts: EndpointOptions): Endpoint {
  const { keys: _keys, ...identity } = settings;
  const key = JSON.stringify([identity, opts.downAfterMs, opts.retryEveryMs, opts.shared !== undefined]);
  let endpoint = registry.get(key);
  if (!endpoint) registry.set(key, (endpoint = new Endpoint(settings, opts)));
  return endpoint;
}

/** Every endpoint this process has used, for progress lines. */
export function knownEndpoints(): Endpoint[] {
  return [...registry.values()];
}
