// The failures ledger: every item a stage could not carry forward, with where and why. Each work
// unit writes its own ledger file before its artifact, so a rerun replaces it rather than adding
// to it, and "nothing lost silently" can be checked by counting.
import { layout } from '../artifacts/layout.ts';
import type { Storage } from '../storage/storage.ts';

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
  async save(work: Storage): Promise<void> {
    const key = layout.ledgerPart(this.stage, this.unit);
    if (!this.failures.length && !(await work.exists(key))) return;
    await work.write(key, this.failures.map((f) => JSON.stringify(f) + '\n').join(''));
  }
}

export async function readLedger(work: Storage): Promise<Failure[]> {
  const out: Failure[] = [];
  for await (const key of work.list('failures/')) {
    if (!key.endsWith('.jsonl')) continue;
    const text = (await work.read(key)).toString('utf8');
    for (const line of text.split('\n')) if (line.trim()) out.push(JSON.parse(line) as Failure);
  }
  return out;
}
