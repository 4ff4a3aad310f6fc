// A unit thread (see thread-pool.ts): runs the units its process's queue workers hand it, one at
// a time, skipping a unit whose artifact is already complete (at-least-once execution, exactly-once
// output). Its context, and what the context caches, lives as long as the thread.
import { parentPort, workerData } from 'node:worker_threads';
import type { Config } from '../../config/schema.ts';
import { stagesByName } from '../../pipeline.ts';
import { canonicalJson } from '../../provenance/digest.ts';
import type { StageKeys } from '../../provenance/stage-keys.ts';
import { createContext } from '../context.ts';
import type { UnitJobResult } from './queues.ts';
import { clearUnitFailure, recordUnitFailure } from './unit-failure.ts';
import { describeError } from '../../util/error-chain.ts';

export interface UnitTask {
  stage: string;
  unit: unknown;
  /** The job's last attempt: a failure now goes to the ledger. */
  final: boolean;
  /** Where the unit ran, for the ledger entry. */
  where: string;
  /** The run's provenance keys, from its record: where the unit's artifacts live. */
  keys: StageKeys;
}

const { config } = workerData as { config: Config };
// One context per run key: what it caches (the manifest, index shards) belongs to those keys.
let ctx = createContext(config);
let ctxKeys = '';
const stages = stagesByName();
const port = parentPort!;

async function runUnit(task: UnitTask): Promise<UnitJobResult> {
  const stage = stages.get(task.stage);
  if (!stage) throw new Error(`no stage "${task.stage}" in this worker's pipeline`);
  const unitId = stage.unitId(task.unit);
  if (canonicalJson(task.keys) !== ctxKeys) {
    ctx = createContext(config, task.keys);
    ctxKeys = canonicalJson(task.keys);
  }
  try {
    let result: UnitJobResult;
    if (await stage.isDone(ctx, task.unit)) result = { skipped: true, items: 0, failed: 0 };
    else result = { skipped: false, ...(await stage.run(ctx, task.unit)) };
    await clearUnitFailure(ctx, stage.name, unitId);
    return result;
  } catch (err) {
    if (task.final) await recordUnitFailure(ctx, stage.name, unitId, task.where, describeError(err)).catch(() => {});
    throw err;
  }
}

port.on('message', (task: UnitTask) => {
  runUnit(task).then(
    (result) => port.postMessage({ ok: true, result }),
    (err: Error) => port.postMessage({ ok: false, error: { message: describeError(err), stack: err?.stack, name: err?.name } }),
  );
});
port.postMessage({ ready: true });
