// Progress per stage on stderr: a live bar redrawn in place on a terminal (units done, items,
// rate, ETA), a line per step elsewhere (CI logs, files), so logs stay readable.
export interface StageProgress {
  stage: string;
  units: number;
  done: number;
  skipped: number;
  items: number;
  failed: number;
  startedAt: number;
}

/** What a bar shows of a stage. */
export interface BarState {
  stage: string;
  units: number;
  done: number;
  items: number;
  seconds: number;
  /** Units in progress, when known (distributed). */
  active?: number;
  failed?: number;
}

const clock = (secs: number) => {
  const s = Math.max(0, Math.round(secs));
  const h = Math.floor(s / 3600);
  const mm = String(Math.floor((s % 3600) / 60)).padStart(h ? 2 : 1, '0');
  return `${h ? `${h}:` : ''}${mm}:${String(s % 60).padStart(2, '0')}`;
};

/**
 * One stage's live bar, e.g. `[embed   ] ######------  2/3 units  100 items  45.2 items/s  ETA 0:05  0:12`:
 * the rate is items over the stage's time so far; the ETA assumes the remaining units take what the
 * done ones took on average.
 */
export function formatBar(b: BarState, width = 20): string {
  const filled = b.units ? Math.round((width * b.done) / b.units) : 0;
  const bar = '#'.repeat(filled) + '-'.repeat(width - filled);
  const rate = b.seconds > 0 && b.items ? `  ${(b.items / b.seconds).toFixed(1)} items/s` : '';
  const eta = b.done > 0 && b.done < b.units ? `  ETA ${clock((b.seconds / b.done) * (b.units - b.done))}` : '';
  const active = b.active ? `  ${b.active} active` : '';
  const failed = b.failed ? `  ${b.failed} failed` : '';
  return `[${b.stage.padEnd(8)}] ${bar} ${b.done}/${b.units} units  ${b.items} items${rate}${active}${failed}${eta}  ${clock(b.seconds)}`;
}

export class ProgressReporter {
  private lastLine = 0;
  constructor(
    private readonly out: NodeJS.WriteStream | { isTTY?: boolean; write(s: string): boolean } = process.stderr,
    private readonly quiet = false,
  ) {}

  private format(p: StageProgress): string {
    const secs = (Date.now() - p.startedAt) / 1000;
    const rate = secs > 0 && p.items ? `  ${(p.items / secs).toFixed(1)} items/s` : '';
    const skipped = p.skipped ? `  (${p.skipped} already complete)` : '';
    const failed = p.failed ? `  ${p.failed} to ledger` : '';
    return `[${p.stage.padEnd(8)}] ${p.done}/${p.units} units  ${p.items} items${rate}${failed}${skipped}  ${secs.toFixed(1)}s`;
  }

  update(p: StageProgress): void {
    if (this.quiet) return;
    if (this.out.isTTY) {
      const seconds = (Date.now() - p.startedAt) / 1000;
      this.out.write(`\r\x1b[2K${formatBar({ ...p, seconds, failed: undefined })}`);
    } else if (this.lastLine === 0) {
      this.lastLine = Date.now(); // a stage's first line in a log is its finish line, or one 5 s in
    } else if (Date.now() - this.lastLine > 5000) {
      this.lastLine = Date.now();
      this.out.write(this.format(p) + '\n');
    }
  }

  finish(p: StageProgress): void {
    if (this.quiet) return;
    this.out.write(`${this.out.isTTY ? '\r\x1b[2K' : ''}${this.format(p)}\n`);
    this.lastLine = 0;
  }
}
