// A unit thread (see thread-pool.ts): runs the units its process hands it, one at a time, through
// the unit executor (at-least-once execution, exactly-once output). Its context, and what the
// context's units share, lives as long as the thread. A unit that fails for good is written to
// the ledger by the process, which sees every way it can.
import { parentPort, workerData } from 'node:worker_threads';
import type { Config } from '../../config/schema.ts';
import type { StageKeys } from '../../core/keys.ts';
import { snapshot } from '../../metrics/registry.ts';
import { stagesByName } from '../../pipeline.ts';
import { canonicalJson } from '../../core/digest.ts';
import { redact } from '../../secrets/redact.ts';
import { describeError } from '../../util/error-chain.ts';
import { createContext } from '../context.ts';
import type { UnitOutcome } from '../../core/stage-report.ts';
import { executeUnit } from '../unit-executor.ts';

export interface UnitTask {
  stage: string;
  unit: unknown;
  /** The run's provenance keys (from its record or published run): where the unit's artifacts live. */
  keys: StageKeys;
}

const { config } = workerData as { config: Config };
const ctx = createContext(config);
let ctxKeys = '';
const stages = stagesByName();
const port = parentPort!;

function runUnit(task: UnitTask): Promise<UnitOutcome> {
  const stage = stages.get(task.stage);
  if (!stage) throw new Error(`no stage "${task.stage}" in this worker's pipeline`);
  // New keys, new layout and shared resources (stages/shared-resources.ts follows ctx.keys).
  if (canonicalJson(task.keys) !== ctxKeys) {
    ctx.keys = task.keys;
    ctxKeys = canonicalJson(task.keys);
  }
  return executeUnit(ctx, stage, task.unit);
}

/** What the unit counted (shard loads, annotation requests) goes to the main thread before its reply. */
async function withMetrics(reply: object): Promise<void> {
  port.postMessage({ metrics: await snapshot() });
  port.postMessage(reply);
}

port.on('message', (task: UnitTask) => {
  void Promise.resolve()
    .then(() => runUnit(task))
    .then(
      (result) => withMetrics({ ok: true, result }),
      // The message becomes the job's failedReason in Redis, and a log line: no secret in either.
      (err: Error) => withMetrics({ ok: false, error: { message: redact(describeError(err)), stack: err?.stack && redact(err.stack), name: err?.name } }),
    );
});
port.postMessage({ ready: true });
