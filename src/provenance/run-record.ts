// The record of a run's provenance, kept in the work storage under the run's name: what the last
// run of this name was keyed by, so the next one can say per stage why it reuses or recomputes
// (`mine.band: [0.8,0.96] -> [0.9,0.96]`), and a distributed run's workers can check they agree.
import { unkeyedLayout } from '../core/layout.ts';
import type { StageContext } from '../core/stage.ts';
import { NotFoundError } from '../storage/storage.ts';
import type { RunProvenance } from './stage-keys.ts';

export interface RunRecord {
  run: string;
  key: string;
  startedAt: string;
  stages: RunProvenance;
}

const recordKey = unkeyedLayout.runRecord;

export async function readRunRecord(ctx: StageContext): Promise<RunRecord | undefined> {
  try {
    return JSON.parse((await ctx.work.read(recordKey(ctx.config.run.name))).toString('utf8')) as RunRecord;
  } catch (err) {
    if (err instanceof NotFoundError) return undefined;
    throw err;
  }
}

export async function writeRunRecord(ctx: StageContext, record: RunRecord): Promise<void> {
  await ctx.work.write(recordKey(record.run), JSON.stringify(record, null, 1));
}
