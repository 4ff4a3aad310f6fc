// Progress per stage on stderr: a line redrawn in place on a terminal, a line per step elsewhere
// (CI logs, files), so logs stay readable.
export interface StageProgress {
  stage: string;
  units: number;
  done: number;
  skipped: number;
  items: number;
  failed: number;
  startedAt: number;
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
      this.out.write(`\r\x1b[2K${this.format(p)}`);
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
