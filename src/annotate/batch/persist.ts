// Batch API calls against a server that is down for a while: a batch runs for hours, and a server
// that misses a few polls or an upload has lost nothing. A call failing for a passing reason is
// made again until failures have lasted `downAfterMs`; then, or at once for a refusal (a wrong key,
// no Batch API), the error fails the unit, and the journal keeps every batch for the next run.
import { BatchApiError } from './client.ts';

export interface Patience {
  /** Passing failures of one call are tried again for this long. */
  downAfterMs: number;
  /** Wait between tries. */
  retryEveryMs: number;
  log: (line: string) => void;
}

export async function persist<T>(what: string, patience: Patience, fn: () => Promise<T>): Promise<T> {
  const since = Date.now();
  for (let tries = 1; ; tries++) {
    try {
      return await fn();
    } catch (err) {
      if (!(err instanceof BatchApiError) || !err.transient) throw err;
      const down = Date.now() - since;
      if (down >= patience.downAfterMs) {
        throw new BatchApiError(`${what}: still failing after ${tries} tries in ${Math.round(down / 1000)} s: ${err.message}`, true, err.status);
      }
      if (tries === 1) patience.log(`${what} failed, trying again every ${patience.retryEveryMs} ms: ${err.message}`);
      await new Promise((resolve) => setTimeout(resolve, patience.retryEveryMs));
    }
  }
}
