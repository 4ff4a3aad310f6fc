// The failures ledger: every item a stage could not carry forward, with where and why. Each work
// unit writes its own ledger file before its artifact, so a rerun replaces it rather than adding
// to it, and "nothing lost silently" can be checked by counting.
// An entry is the item's own fault (a corrupt image, an empty caption), never the environment's:
// a fault of the environment fails the unit, which is retried, instead of coming here. `retryable`
// says whether another try may still pass (a model reply that stayed malformed, a unit that failed);
// `megapairs retry-failed` reruns the units holding such entries.
import { LEDGER_STAGES_OUTSIDE } from '../core/layout.ts';
import { stagesOf } from '../core/keys.ts';
import type { StageContext } from '../core/stage.ts';
import { describeError } from '../util/error-chain.ts';
import { redact } from '../secrets/redact.ts';

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
  /** The cause's own words (sharp's message, the errno code, the HTTP status and body). */
  message: string;
  /** Whether another try may pass; false for faults of the item itself. */
  retryable: boolean;
}

/** The reason of a queue job a worker refused as not the run's (distributed/job-check.ts): not an item of the corpus. */
export const JOB_REFUSED = 'job_refused';

/** What a stage or unit name may be, as a ledger file's name. */
const SAFE_NAME = /^[A-Za-z0-9_][A-Za-z0-9._-]*$/;

export class UnitLedger {
  readonly failures: Failure[] = [];
  constructor(
    readonly stage: string,
    readonly unit: string,
  ) {}

  /** `message` may be the error itself: it is written with its cause chain. */
  add(item: string, where: string, reason: string, message: string | unknown, opts: { retryable?: boolean } = {}): void {
    const text = typeof message === 'string' ? message : describeError(message);
    this.failures.push({ stage: this.stage, unit: this.unit, item, where, reason, message: text, retryable: opts.retryable ?? false });
  }

  /** Writes the unit's ledger file; a clean unit writes none unless it must blank an earlier one. */
  async save(ctx: StageContext): Promise<void> {
    // The file is named by the stage and unit: names from planning, never ones that could leave the folder.
    for (const name of [this.stage, this.unit])
      if (!SAFE_NAME.test(name) || name.includes('..')) throw new Error(`ledger: ${JSON.stringify(name)} is not a safe file name (stage ${this.stage})`);
    const work = ctx.work;
    const key = ctx.layout.ledgerPart(this.stage, this.unit);
    if (!this.failures.length && !(await work.exists(key))) return;
    // An endpoint's error may echo the request's key: the file (on shared storage) never holds it.
    await work.write(key, this.failures.map((f) => redact(JSON.stringify(f)) + '\n').join(''));
  }
}

/** The ledger of the current keys: entries an older config wrote are not this run's. */
export async function readLedger(ctx: StageContext, stages: readonly string[] = [...stagesOf(ctx.keys ?? {}), ...LEDGER_STAGES_OUTSIDE]): Promise<Failure[]> {
  const out: Failure[] = [];
  const work = ctx.work;
  for (const stage of stages)
    for (const folder of ctx.layout.ledgerFolders(stage))
      for await (const key of work.list(folder)) {
        if (!key.endsWith('.jsonl')) continue;
        const text = (await work.read(key)).toString('utf8');
        // Entries written before `retryable` existed read as final.
        for (const line of text.split('\n')) {
          if (!line.trim()) continue;
          const f = JSON.parse(line) as Failure;
          out.push({ ...f, retryable: f.retryable ?? false });
        }
      }
  return out;
}
