// What a run keeps in Redis. A unit job is needed until its phase is done: then its result and
// times are summed into its stage's report (a hash beside the control queue, `<queue>:reports`),
// and the completed jobs and the stage's event stream are removed, so Redis holds a run's live
// phase, not its history.
// Re-enqueueing does not need them: planning skips units whose artifacts are complete. The
// control queue's few barrier jobs stay: the start barrier marks the run as enqueued, the final
// one holds the summary. `megapairs clean` removes every key of a run.
import { reportOf, type StageReport } from '../../core/stage-report.ts';
import { CONTROL, STAGE_NAMES, type Planned, type RunQueues } from './queues.ts';
import { publishedRunKey } from './run-identity.ts';
import { stageTally } from './reports.ts';

/** Units a barrier's phase planned per stage, and how many of them were complete already (not enqueued). */

/** One hash per run key: a run restarted with a changed config keeps its own reports. */
const reportsKey = (rq: RunQueues) => rq.queue(CONTROL).toKey(`reports:${rq.run?.key ?? 'unkeyed'}`);

/** The stage reports of the phases done so far. */
export async function savedReports(rq: RunQueues): Promise<Map<string, StageReport>> {
  const raw = await rq.connection.hgetall(reportsKey(rq));
  return new Map(STAGE_NAMES.filter((s) => raw[s]).map((s) => [s, JSON.parse(raw[s]) as StageReport]));
}

/**
 * Sums a finished phase's units into their stages' reports, then removes its completed jobs. A
 * report is written once (HSETNX): a barrier that runs again after trimming keeps the first.
 */
export async function closePhase(rq: RunQueues, barrierId: string, planned: Planned): Promise<void> {
  for (const [stage, p] of Object.entries(planned)) {
    const r = reportOf(stage, await stageTally(rq, stage));
    // Reused are the units complete when the phase was planned; every unit enqueued was computed
    // by this run, even if a second attempt (after a crash or an outage) found it complete.
    r.units += p.skipped;
    r.skipped = p.skipped;
    await rq.connection.hsetnx(reportsKey(rq), stage, JSON.stringify(r));
  }
  for (const stage of Object.keys(planned)) {
    await rq.queue(stage).clean(0, 0, 'completed');
    // Its event stream too (BullMQ keeps up to 10,000 events a queue): the report has what it told.
    await rq.connection.xtrim(rq.queue(stage).keys.events, 'MAXLEN', 0);
  }
  // The barrier's copy of its children's results (BullMQ's `processed` hash) is summed too.
  await rq.connection.unlink(rq.queue(CONTROL).toKey(`${barrierId}:processed`));
}

/**
 * Forgets that a run of this key finished: its barrier jobs (the final one holds the summary) and
 * its stage reports, so enqueueing it again plans every phase anew from the artifacts. Called
 * when storage lacks artifacts of a run Redis holds as finished (deleted, or replaced by another
 * config's since).
 */
export async function forgetFinishedRun(rq: RunQueues, runKey: string): Promise<void> {
  const control = rq.queue(CONTROL);
  for (const job of await control.getJobs(['completed', 'failed'])) if (job?.id?.endsWith(`.${runKey}`)) await job.remove();
  await rq.connection.unlink(reportsKey(rq));
}

/** Every Redis key of a run (its queues, their jobs and events, the reports), a SCAN page at a time. */
async function* runKeys(rq: RunQueues): AsyncGenerator<string[]> {
  const glob = (s: string) => s.replace(/[*?[\]\\]/g, '\\$&');
  for (const { queue } of rq.all()) {
    // One pattern per queue, so a run named "a" never matches the queues of a run named "a.b".
    const pattern = `${glob(queue.toKey(''))}*`;
    let cursor = '0';
    do {
      const [next, keys] = await rq.connection.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      if (keys.length) yield keys;
      cursor = next;
    } while (cursor !== '0');
  }
}

/** Removes every key of a run; returns how many. */
export async function cleanRun(rq: RunQueues): Promise<number> {
  let removed = await rq.connection.unlink(publishedRunKey(rq.config));
  for await (const keys of runKeys(rq)) removed += await rq.connection.unlink(...keys);
  return removed;
}

/** Bytes Redis uses for a run's keys (MEMORY USAGE of each, every element sampled), and how many keys. */
export async function runMemory(rq: RunQueues): Promise<{ keys: number; bytes: number }> {
  let keys = 0;
  let bytes = 0;
  for await (const page of runKeys(rq)) {
    for (const k of page) {
      keys++;
      bytes += Number((await rq.connection.memory('USAGE', k, 'SAMPLES', '0')) ?? 0);
    }
  }
  return { keys, bytes };
}
