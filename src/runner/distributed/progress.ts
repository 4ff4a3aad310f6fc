// Progress of a distributed run per stage, from the queues' job counts and the units' own results
// and times (so a follower that joins late shows the same times as one there from the start): a
// line when a stage's counts change (at most one per stage every few seconds) and a line when its
// phase is done (its report, summed from its units by the phase's barrier). Counts come from
// Redis, so any process can follow a run, whoever runs its units. On a terminal, the stages under
// way are live bars (formatBar) redrawn below the finished lines.
import { emptyTally, type StageReport, type StageTally } from '../../core/stage-report.ts';
import { formatBar } from '../progress.ts';
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

export interface StageRow extends QueueCounts {
  tally?: StageTally;
}

export class QueueProgress {
  private readonly shown = new Map<string, { key: string; at: number }>();
  private readonly complete = new Set<string>();
  /** Bar lines on the terminal now, below the cursor's line. */
  private drawn = 0;

  constructor(
    private readonly write: (line: string) => void,
    readonly tty?: { write(s: string): boolean },
    private readonly everyMs = 3000,
  ) {}

  /** A line that stays (a finished stage, a message), above the bars. */
  say(line: string): void {
    this.clearBars();
    if (this.tty) this.tty.write(line + '\n');
    else this.write(line);
  }

  private clearBars(): void {
    if (this.tty && this.drawn) this.tty.write(`\x1b[${this.drawn}A\r\x1b[J`);
    this.drawn = 0;
  }

  update(rows: StageRow[], reports: Map<string, StageReport>, now = Date.now()): void {
    const bars: string[] = [];
    for (const { short, counts: c, tally = emptyTally() } of rows) {
      if (short === CONTROL || this.complete.has(short)) continue;
      const r = reports.get(short);
      if (r) {
        this.complete.add(short);
        const skipped = r.skipped ? `  (${r.skipped} already complete)` : '';
        this.say(
          `[${short.padEnd(8)}] ${r.units}/${r.units} units  ${r.items} items${r.failed ? `  ${r.failed} to ledger` : ''}${skipped}  ${r.seconds.toFixed(1)}s`,
        );
        continue;
      }
      const units = total(c);
      if (units === 0) continue;
      const done = c.completed ?? 0;
      if (this.tty) {
        const seconds = tally.first ? (now - tally.first) / 1000 : 0;
        bars.push(formatBar({ stage: short, units, done, items: tally.items, seconds, active: c.active, failed: c.failed }));
        continue;
      }
      const key = `${done}/${units} units  ${tally.items} items  ${c.active ?? 0} active${c.failed ? `  ${c.failed} failed` : ''}${c.delayed ? `  ${c.delayed} awaiting retry` : ''}`;
      const last = this.shown.get(short);
      if (!last || (last.key !== key && now - last.at >= this.everyMs)) {
        this.shown.set(short, { key, at: now });
        const secs = tally.first ? (now - tally.first) / 1000 : 0;
        this.write(`[${short.padEnd(8)}] ${key}  ${secs.toFixed(1)}s`);
      }
    }
    if (this.tty) {
      this.clearBars();
      if (bars.length) this.tty.write(bars.map((b) => b + '\n').join(''));
      this.drawn = bars.length;
    }
  }

  /** Takes the live bars off the terminal (the finished lines stay). */
  end(): void {
    this.clearBars();
  }
}
