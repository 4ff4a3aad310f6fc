// The failures ledger: every item a stage could not carry forward, with where and why. Each work
// unit writes its own ledger file before its artifact, so a rerun replaces it rather than adding
// to it, and "nothing lost silently" can be checked by counting.
import { LEDGER_STAGES_OUTSIDE } from '../artifacts/layout.ts';
import type { StageContext } from '../stages/stage.ts';

export interface Failure {
  stage: string;
  /** The work unit it happened in (e.g. "part-00003"). */
  unit: string;
  /** The item: an image key, a pair id, or the unit itself for unit-wide faults. */
  item: string;
  /** Where the bad input is: a file, a tar member and offset, a URL. */
  where: string;
  /** A short stable code for counting: corrupt_image, empty_caption, truncated_tar, ... */
  reason: string;
  message: string;
}

export class UnitLedger {
  readonly failures: Failure[] = [];
  constructor(
    readonly stage: string,
    readonly unit: string,
  ) {}

  add(item: string, where: string, reason: string, message: string): void {
    this.failures.push({ stage: this.stage, unit: this.unit, item, where, reason, message });
  }

  /** Writes the unit's ledger file; a clean unit writes none unless it must blank an earlier one. */
  async save(ctx: StageContext): Promise<void> {
    const work = ctx.work;
    const key = ctx.layout.ledgerPart(this.stage, this.unit);
    if (!this.failures.length && !(await work.exists(key))) return;
    await work.write(key, this.failures.map((f) => JSON.stringify(f) + '\n').join(''));
  }
}

/** The ledger of the current keys: entries an older config wrote are not this run's. */
export async function readLedger(ctx: StageContext, stages: readonly string[] = [...Object.keys(ctx.keys ?? {}), ...LEDGER_STAGES_OUTSIDE]): Promise<Failure[]> {
  const out: Failure[] = [];
  const work = ctx.work;
  for (const stage of stages) for await (const key of work.list(ctx.layout.ledgerFolder(stage))) {
    if (!key.endsWith('.jsonl')) continue;
    const text = (await work.read(key)).toString('utf8');
    for (const line of text.split('\n')) if (line.trim()) out.push(JSON.parse(line) as Failure);
  }
  return out;
}
