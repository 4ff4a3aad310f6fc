// Annotation requests answered by batch: what is in the request cache is read; what a recorded,
// unfinished batch holds (this run's, a killed run's, another unit's) is adopted and waited for;
// only the rest is submitted, in files within the limits. Batches are polled until every one has
// ended; each reply goes to the request cache before it is used. Each request ends with its reply
// or a failure sorted as the online path sorts it: the item's own (a 4xx: the ledger, with its
// reason) or the environment's (5xx, 429, a line the server could not run; the unit fails). The
// environment's, and the requests an expired or cancelled batch did not run, go again in a
// follow-up batch of only those, each request submitted at most `maxAttempts` times in all.
import { annotateLog } from '../log.ts';
import { mapPool } from '../../util/pool.ts';
import { requestHash, type CachedCompletion, type RequestCache } from '../request-cache.ts';
import { BatchApiError, type BatchClient, type BatchStatus, TERMINAL } from './client.ts';
import { collectBatch } from './collect.ts';
import { batchLine, type BatchLimits, DEFAULT_LIMITS, splitIntoFiles } from './files.ts';
import { type BatchJournal, type JournalRecord, noteBatch, type Transition } from './journal.ts';
import { type BatchFailure, type LineVerdict, unfinished } from './outcome.ts';
import { type Patience, persist } from './persist.ts';
import type { BatchRequest, RequestHash } from './request.ts';
import { Submitter } from './submission.ts';
import { BatchValidationError } from './validation-error.ts';

export interface BatchSettings {
  /** Wait between two polls of the running batches. */
  pollIntervalMs: number;
  limits: BatchLimits;
  /** Submissions of one request in all, the first included (an adopted batch counts as one). */
  maxAttempts: number;
  /** A Batch API call failing in passing (unreachable, 429, 5xx) is tried again this long before the unit fails. */
  downAfterMs: number;
  log: (line: string) => void;
}

export const DEFAULT_SETTINGS: BatchSettings = {
  pollIntervalMs: 30_000,
  limits: DEFAULT_LIMITS,
  maxAttempts: 3,
  downAfterMs: 30 * 60_000,
  log: annotateLog,
};

export type RequestOutcome =
  | { custom_id: RequestHash; from: 'cache' | 'batch'; completion: CachedCompletion; attempts: number }
  | { custom_id: RequestHash; failure: BatchFailure; attempts: number };

export interface BatchReport {
  batch_id?: string;
  file_id: string;
  model: string;
  /** Requests in the file, and those of them this run asked for. */
  requests: number;
  ours: number;
  /** Recorded by an earlier run (or before a kill) and waited for here, not submitted. */
  adopted: boolean;
  status: Transition['status'];
  transitions: Transition[];
  request_counts?: JournalRecord['request_counts'];
}

export interface BatchRunReport {
  batches: BatchReport[];
  totals: {
    /** Requests given, and distinct ones among them. */
    requests: number;
    distinct: number;
    cached: number;
    /** Requests found in a recorded unfinished batch, not submitted again. */
    adopted: number;
    /** Request lines this run put in files, follow-ups included; `resubmitted` of them went before. */
    submitted: number;
    resubmitted: number;
    batches: number;
    /** Ended batches of other runs, holding none of this run's requests, read back (their replies kept) and closed. */
    swept: number;
    files_uploaded: number;
    completed: number;
    item_failures: number;
    environment_failures: number;
  };
}

interface RequestState {
  request: BatchRequest;
  attempts: number;
  /** The file whose batch holds it now. */
  inFile?: string;
  outcome?: RequestOutcome;
}

interface Tracked {
  record: JournalRecord;
  customIds: RequestHash[];
  ours: number;
  adopted: boolean;
  collected: boolean;
}

export async function runBatches(input: {
  requests: readonly BatchRequest[];
  cache: RequestCache;
  journal: BatchJournal;
  client: BatchClient;
  settings?: Partial<BatchSettings>;
}): Promise<{ outcomes: RequestOutcome[]; report: BatchRunReport }> {
  const { cache, journal, client } = input;
  const s: BatchSettings = { ...DEFAULT_SETTINGS, ...input.settings };
  const patience: Patience = { downAfterMs: s.downAfterMs, retryEveryMs: s.pollIntervalMs, log: s.log };
  const submitter = new Submitter(client, journal, patience);
  const states = new Map<RequestHash, RequestState>();
  for (const request of input.requests) {
    // The cache contract: a reply is kept under the hash of the very body that was sent.
    if (request.custom_id !== requestHash(request.body)) throw new Error(`batch request ${request.custom_id} is not the hash of its body`);
    if (!states.has(request.custom_id)) states.set(request.custom_id, { request, attempts: 0 });
  }
  const totals: BatchRunReport['totals'] = {
    requests: input.requests.length,
    distinct: states.size,
    cached: 0,
    adopted: 0,
    submitted: 0,
    resubmitted: 0,
    batches: 0,
    swept: 0,
    files_uploaded: 0,
    completed: 0,
    item_failures: 0,
    environment_failures: 0,
  };
  const tracked: Tracked[] = [];

  // 1. Replies already paid for.
  await mapPool([...states.values()], 16, async (st) => {
    const completion = await cache.get(st.request.custom_id);
    if (completion) st.outcome = { custom_id: st.request.custom_id, from: 'cache', completion, attempts: 0 };
  });
  totals.cached = [...states.values()].filter((st) => st.outcome).length;

  // 2. Requests a recorded batch already holds: waited for, never submitted again.
  const others: { record: JournalRecord; customIds: RequestHash[] }[] = [];
  for (const record of await journal.open(client.baseURL)) {
    const customIds = await journal.requestsOf(record.file_id);
    let ours = 0;
    for (const id of customIds) {
      const st = states.get(id);
      if (!st || st.outcome || st.inFile) continue;
      st.inFile = record.file_id;
      st.attempts = 1;
      ours++;
    }
    if (!ours) others.push({ record, customIds });
    else {
      totals.adopted += ours;
      tracked.push({ record, customIds, ours, adopted: true, collected: false });
    }
  }
  // Other runs' batches that hold none of this run's requests: read back if they have ended (their
  // replies were paid for, and a killed run may never come back for them), else left to their run.
  for (const { record, customIds } of others) {
    if (!record.batch_id) continue;
    if (!TERMINAL.has(record.status as BatchStatus)) record.abandoned = await refresh(record);
    if (!record.abandoned && !TERMINAL.has(record.status as BatchStatus)) continue;
    if (!record.abandoned && record.status !== 'failed') await collectBatch(record, customIds, client, cache, patience);
    record.collected_at = new Date().toISOString();
    await journal.save(record);
    totals.swept++;
  }
  for (const gone of await submitter.resume(tracked.map((t) => t.record))) {
    const t = tracked.find((x) => x.record === gone)!;
    tracked.splice(tracked.indexOf(t), 1);
    totals.adopted -= t.ours;
    for (const id of t.customIds) {
      const st = states.get(id);
      if (st?.inFile !== gone.file_id) continue;
      st.inFile = undefined;
      st.attempts = 0;
    }
    s.log(`file ${gone.file_id} of an earlier run is gone from the server (${gone.abandoned}): its requests go in a new file`);
  }

  // 3. The rest, and later each round's follow-ups.
  const submit = async (batch: RequestState[]) => {
    const files = splitIntoFiles(
      batch.map((st) => batchLine(st.request.custom_id, st.request.body)),
      s.limits,
    );
    for (const [k, file] of files.entries()) {
      const record = await submitter.submit(file, `megapairs-${Date.now()}-${k + 1}.jsonl`);
      const customIds = file.lines.map((l) => l.custom_id);
      for (const id of customIds) {
        const st = states.get(id)!;
        if (st.attempts) totals.resubmitted++;
        st.attempts++;
        st.inFile = record.file_id;
      }
      totals.submitted += customIds.length;
      totals.files_uploaded++;
      tracked.push({ record, customIds, ours: customIds.length, adopted: false, collected: false });
      s.log(`batch ${record.batch_id}: ${customIds.length} requests for ${file.model} submitted in file ${record.file_id}`);
    }
  };
  await submit([...states.values()].filter((st) => !st.outcome && !st.inFile));

  // 4. Polled until every batch has ended and been read back.
  for (;;) {
    const retry: RequestState[] = [];
    /** A closed batch's verdicts on this run's requests: a reply, a failure, or another submission. */
    const settle = async (t: Tracked, verdicts: Map<RequestHash, LineVerdict>) => {
      for (const [id, verdict] of verdicts) {
        const st = states.get(id);
        if (!st || st.inFile !== t.record.file_id) continue; // not ours: its reply is kept, nothing more
        st.inFile = undefined;
        if (verdict.ok) st.outcome = { custom_id: id, from: 'batch', completion: verdict.completion, attempts: st.attempts };
        else if (verdict.failure.retryable && st.attempts < s.maxAttempts) retry.push(st);
        else st.outcome = { custom_id: id, failure: verdict.failure, attempts: st.attempts };
      }
      t.record.collected_at = new Date().toISOString();
      await journal.save(t.record);
      t.collected = true;
    };
    for (const t of tracked.filter((t) => !t.collected)) {
      if (!TERMINAL.has(t.record.status as BatchStatus)) {
        const gone = await refresh(t.record);
        if (gone) {
          // The server no longer knows the batch: nothing more will come of it, its requests go again.
          t.record.abandoned = gone;
          s.log(`batch ${t.record.batch_id} is gone from the server (${gone}): its requests go again`);
          await settle(t, new Map(t.customIds.map((id) => [id, { ok: false, failure: unfinished(`batch ${t.record.batch_id} is gone: ${gone}`) }])));
          continue;
        }
      }
      if (!TERMINAL.has(t.record.status as BatchStatus)) continue;
      if (t.record.status === 'failed') {
        t.record.collected_at = new Date().toISOString();
        await journal.save(t.record);
        throw new BatchValidationError(t.record, t.customIds, journal.where(t.record.file_id));
      }
      const collected = await collectBatch(t.record, t.customIds, client, cache, patience);
      if (collected.unreadable || collected.foreign || collected.missingFiles.length) {
        s.log(
          `batch ${t.record.batch_id}: ignored ${collected.unreadable} unreadable result line(s) and ${collected.foreign} naming no request of its file` +
            (collected.missingFiles.length ? `; result file(s) ${collected.missingFiles.join(', ')} gone from the server (their requests go again)` : ''),
        );
      }
      await settle(t, collected.verdicts);
      const c = t.record.request_counts;
      s.log(
        `batch ${t.record.batch_id} ${t.record.status}: ${collected.kept} replies kept${c ? ` (${c.completed} completed, ${c.failed} failed of ${c.total})` : ''}`,
      );
    }
    if (retry.length) {
      s.log(`${retry.length} request(s) go again in a follow-up batch`);
      await submit(retry);
    }
    if (tracked.every((t) => t.collected)) break;
    await new Promise((resolve) => setTimeout(resolve, s.pollIntervalMs));
  }

  /** The batch's state now, into its record; what the server said when it no longer knows the batch (404). */
  async function refresh(record: JournalRecord): Promise<string | undefined> {
    try {
      const batch = await persist(`polling batch ${record.batch_id}`, patience, () => client.retrieve(record.batch_id!));
      if (noteBatch(record, batch)) await journal.save(record);
      return undefined;
    } catch (err) {
      if (err instanceof BatchApiError && err.status === 404) return err.message;
      throw err;
    }
  }

  const outcomes = input.requests.map((r) => states.get(r.custom_id)!.outcome!);
  for (const st of states.values()) {
    const o = st.outcome!;
    if ('completion' in o) totals.completed += o.from === 'batch' ? 1 : 0;
    else if (o.failure.owner === 'item') totals.item_failures++;
    else totals.environment_failures++;
  }
  totals.batches = tracked.length;
  const batches = tracked.map(
    (t): BatchReport => ({
      batch_id: t.record.batch_id,
      file_id: t.record.file_id,
      model: t.record.model,
      requests: t.record.requests,
      ours: t.ours,
      adopted: t.adopted,
      status: t.record.status,
      transitions: t.record.transitions,
      request_counts: t.record.request_counts,
    }),
  );
  return { outcomes, report: { batches, totals } };
}
