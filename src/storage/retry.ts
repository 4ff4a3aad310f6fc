// Retrying remote calls: which errors are worth another attempt (throttling, 5xx, dropped or timed
// out connections) and exponential backoff with full jitter between attempts, so many workers
// throttled at once do not come back in lockstep. The whole unit is retried (request and body),
// because a body that drops mid-stream is invisible to the SDK's own retries.

export interface RetryPolicy {
  /** Attempts in all, the first included. */
  attempts: number;
  baseMs: number;
  maxMs: number;
}

const NETWORK_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ERR_STREAM_PREMATURE_CLOSE',
  'UND_ERR_SOCKET',
]);
const RETRYABLE_NAMES = new Set([
  'SlowDown',
  'Throttling',
  'ThrottlingException',
  'RequestThrottled',
  'TooManyRequestsException',
  'RequestTimeout',
  'RequestTimeoutException',
  'TimeoutError',
  'InternalError',
  'ServiceUnavailable',
  'IncompleteBody',
]);

type ErrorLike = Error & { code?: string; $metadata?: { httpStatusCode?: number }; $retryable?: unknown; cause?: unknown };

/** Whether another attempt may succeed where this one failed. */
function isTransientError(err: unknown): boolean {
  for (let e = err as ErrorLike | undefined, depth = 0; e && depth < 4; e = e.cause as ErrorLike | undefined, depth++) {
    if (typeof e !== 'object') return false;
    if (e.code && NETWORK_CODES.has(e.code)) return true;
    if (RETRYABLE_NAMES.has(e.name)) return true;
    const status = e.$metadata?.httpStatusCode;
    if (status !== undefined && (status >= 500 || status === 429 || status === 408)) return true;
    if (e.$retryable) return true;
    if (/socket hang up|aborted|premature close|ended before|truncated response/i.test(e.message ?? '')) return true;
  }
  return false;
}

/** The wait before attempt `attempt + 1` (attempt counts from 0): uniform in [0, min(max, base * 2^attempt)]. */
function backoffDelay(policy: RetryPolicy, attempt: number): number {
  const ceiling = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.min(attempt, 30));
  return Math.floor(Math.random() * ceiling);
}

export class RetriesExhaustedError extends Error {
  constructor(
    readonly what: string,
    readonly attempts: number,
    cause: Error,
  ) {
    super(`${what}: gave up after ${attempts} attempts: ${cause.message}`, { cause });
    this.name = 'RetriesExhaustedError';
  }
}

/**
 * The one retry decision, after attempt `attempt` (from 0) failed with `err`: throws when no other
 * attempt should follow (`err` as is when it is not transient, RetriesExhaustedError naming `what`
 * when the policy's attempts are used up), else waits the backoff before the next.
 */
export async function retryOrThrow(what: string, policy: RetryPolicy, err: unknown, attempt: number): Promise<void> {
  if (!isTransientError(err)) throw err;
  if (attempt + 1 >= policy.attempts) throw new RetriesExhaustedError(what, attempt + 1, err as Error);
  const delay = backoffDelay(policy, attempt);
  if (delay > 0) await new Promise((r) => setTimeout(r, delay));
}

/** Runs `fn` until it succeeds or retryOrThrow gives up. */
export async function withRetry<T>(what: string, policy: RetryPolicy, fn: (attempt: number) => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      await retryOrThrow(what, policy, err, attempt);
    }
  }
}
