// Progress of a distributed run per stage, from the queues' job counts: a line when a stage's
// counts change (at most one per stage every few seconds) and a line when it completes. Counts
// come from Redis, so any process can follow a run, whoever runs its units.
import { CONTROL } from './queues.ts';

export type Counts = Record<string, number>;
export interface QueueCounts {
  short: string;
  counts: Counts;
}

export const COUNT_TYPES = ['wait', 'prioritized', 'paused', 'active', 'delayed', 'waiting-children', 'completed', 'failed'] as const;

const n = (c: Counts, ...types: string[]) => types.reduce((a, t) => a + (c[t] ?? 0), 0);
export const waiting = (c: Counts) => n(c, 'wait', 'prioritized', 'paused');
/** Jobs that will run without anyone's help: waiting, running, or waiting out a retry delay. */
export const pending = (c: Counts) => n(c, 'wait', 'prioritized', 'paused', 'active', 'delayed');
export const total = (c: Counts) => n(c, ...COUNT_TYPES);

export class QueueProgress {
  private readonly shown = new Map<string, { key: string; at: number }>();
  private readonly firstSeen = new Map<string, number>();
  private readonly complete = new Set<string>();

  constructor(
    private readonly write: (line: string) => void,
    private readonly everyMs = 3000,
  ) {}

  update(rows: QueueCounts[]): void {
    const now = Date.now();
    for (const { short, counts: c } of rows) {
      const units = total(c);
      if (short === CONTROL || units === 0 || this.complete.has(short)) continue;
      if (!this.firstSeen.has(short)) this.firstSeen.set(short, now);
      const done = c.completed ?? 0;
      const key = `${done}/${units} units  ${c.active ?? 0} active${c.failed ? `  ${c.failed} failed` : ''}${c.delayed ? `  ${c.delayed} awaiting retry` : ''}`;
      const line = `[${short.padEnd(8)}] ${key}  ${((now - this.firstSeen.get(short)!) / 1000).toFixed(1)}s`;
      const last = this.shown.get(short);
      if (done === units) {
        this.complete.add(short);
        this.write(line);
      } else if (!last || (last.key !== key && now - last.at >= this.everyMs)) {
        this.shown.set(short, { key, at: now });
        this.write(line);
      }
    }
  }
}
