// The line a person running annotation for days reads: per endpoint, requests/s, tokens/s, error
// share by kind, requests in flight and from the cache; then pairs done of those this process has
// taken on, and the ETA at the current rate. Printed every `everyMs` while units run.
import { knownEndpoints, type Endpoint, type EndpointStats } from './endpoint.ts';

export class AnnotateProgress {
  private pairsTotal = 0;
  private pairsDone = 0;
  private active = 0;
  private timer?: NodeJS.Timeout;
  private last = new Map<Endpoint, { at: number; stats: EndpointStats }>();
  private startedAt = 0;
  private doneAtStart = 0;

  constructor(
    private readonly everyMs = 10_000,
    private readonly write: (line: string) => void = (l) => process.stderr.write(`${l}\n`),
  ) {}

  unitStarted(pairs: number): void {
    this.pairsTotal += pairs;
    if (this.active++ === 0) {
      this.startedAt = Date.now();
      this.doneAtStart = this.pairsDone;
      this.snapshot();
      this.timer = setInterval(() => this.print(), this.everyMs);
      this.timer.unref();
    }
  }

  pairDone(): void {
    this.pairsDone++;
  }

  unitEnded(): void {
    if (--this.active === 0) clearInterval(this.timer);
  }

  private snapshot(): void {
    for (const e of knownEndpoints()) this.last.set(e, { at: Date.now(), stats: structuredClone(e.stats) });
  }

  /** The lines as they would print now (one per endpoint with traffic, then the pairs line). */
  lines(): string[] {
    const now = Date.now();
    const out: string[] = [];
    for (const e of knownEndpoints()) {
      const prev = this.last.get(e) ?? { at: this.startedAt, stats: { requests: 0, cached: 0, errors: {}, prompt_tokens: 0, completion_tokens: 0 } };
      const secs = Math.max(0.001, (now - prev.at) / 1000);
      const s = e.stats;
      const requests = s.requests - prev.stats.requests;
      const tokens = s.prompt_tokens + s.completion_tokens - prev.stats.prompt_tokens - prev.stats.completion_tokens;
      const errors = Object.entries(s.errors)
        .map(([k, v]) => [k, v - (prev.stats.errors[k] ?? 0)] as const)
        .filter(([, v]) => v > 0);
      const errorCount = errors.reduce((a, [, v]) => a + v, 0);
      if (!requests && !errorCount && !(s.cached - prev.stats.cached) && !e.inFlight) continue;
      const share = requests ? `${((100 * errorCount) / requests).toFixed(1)}%` : '-';
      const kinds = errors.length ? ` (${errors.map(([k, v]) => `${k} ${v}`).join(', ')})` : '';
      out.push(
        `[annotate] ${e.settings.step} ${e.settings.base_url} ${e.settings.model}: ${(requests / secs).toFixed(1)} req/s, ${Math.round(tokens / secs)} tok/s, errors ${share}${kinds}, ` +
          `${e.inFlight} in flight, ${s.cached - prev.stats.cached} cached${e.isDown ? ', DOWN' : ''}`,
      );
    }
    const rate = (this.pairsDone - this.doneAtStart) / Math.max(0.001, (now - this.startedAt) / 1000);
    const left = this.pairsTotal - this.pairsDone;
    const eta = rate > 0 ? formatDuration(left / rate) : '-';
    out.push(`[annotate] pairs ${this.pairsDone}/${this.pairsTotal} of the units in progress, ${rate.toFixed(1)} pairs/s, ETA ${eta}`);
    return out;
  }

  private print(): void {
    for (const l of this.lines()) this.write(l);
    this.snapshot();
  }
}

function formatDuration(s: number): string {
  if (s < 60) return `${Math.ceil(s)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.round((s % 3600) / 60)).padStart(2, '0')}m`;
}
