// A unit thread (see thread-pool.ts): runs the units its process's queue workers hand it, one at
// a time, skipping a unit whose artifact is already complete (at-least-once execution, exactly-once
// output). Its context, and what the context caches, lives as long as the thread. A unit that
// fails for good is written to the ledger by the process (worker.ts), which sees every way it can.
import { parentPort, workerData } from 'node:worker_threads';
import type { Config } from '../../config/schema.ts';
import { snapshot } from '../../metrics/registry.ts';
import { redact } from '../../secrets/redact.ts';
import { stagesByName } from '../../pipeline.ts';
import { canonicalJson } from '../../provenance/digest.ts';
import type { StageKeys } from '../../provenance/stage-keys.ts';
import { createContext } from '../context.ts';
import type { UnitJobResult } from './queues.ts';
import { describeError } from '../../util/error-chain.ts';
import { clearUnitFailure } from './unit-failure.ts';
import { readUnitResult, writeUnitResult } from './unit-record.ts';

export interface UnitTask {
  stage: string;
  unit: unknown;
  /** The run's provenance keys, from its published record: where the unit's artifacts live. */
  keys: StageKeys;
}

const { config } = workerData as { config: Config };
// One context per run key: what it shares between units (ctx.shared) belongs to those keys.
let ctx = createContext(config);
let ctxKeys = '';
const stages = stagesByName();
const port = parentPort!;

async function runUnit(task: UnitTask): Promise<UnitJobResult> {
  const stage = stages.get(task.stage);
  if (!stage) throw new Error(`no stage "${task.stage}" in this worker's pipeline`);
  if (canonicalJson(task.keys) !== ctxKeys) {
    ctx = createContext(config, task.keys);
    ctxKeys = canonicalJson(task.keys);
  }
  const unitId = stage.unitId(task.unit);
  let result: UnitJobResult;
  // Complete already: an earlier attempt (whose worker died, or whose completion Redis lost) made it.
  if (await stage.isDone(ctx, task.unit)) result = { skipped: true, ...(await readUnitResult(ctx, stage.name, unitId)) };
  else {
    const r = await stage.run(ctx, task.unit);
    await writeUnitResult(ctx, stage.name, unitId, r);
    result = { skipped: false, ...r };
  }
  await clearUnitFailure(ctx, stage.name, unitId);
  return result;
}

/** What the unit counted (shard loads, annotation requests) goes to the main thread before its reply. */
async function withMetrics(reply: object): Promise<void> {
  port.postMessage({ metrics: await snapshot() });
  port.postMessage(reply);
}

port.on('message', (task: UnitTask) => {
  void runUnit(task).then(
    (result) => withMetrics({ ok: true, result }),
    // The message becomes the job's failedReason in Redis, and a log line: no secret in either.
    (err: Error) => withMetrics({ ok: false, error: { message: redact(describeError(err)), stack: err?.stack && redact(err.stack), name: err?.name } }),
  );
});
port.postMessage({ ready: true });
