// Reading back a finished batch: its output and error files, line by line in whatever order the
// server wrote them, into a verdict per request. Every reply the batch was paid for goes to the
// request cache, in the form the online path keeps, before any is used: those of requests this
// run did not ask for too (a killed run's, another unit's), since no reply is ever bought twice.
import { mapPool } from '../../util/pool.ts';
import type { RequestCache } from '../request-cache.ts';
import { BatchApiError, type BatchClient } from './client.ts';
import type { JournalRecord } from './journal.ts';
import { type LineVerdict, readResultLine, unfinished } from './outcome.ts';
import { type Patience, persist } from './persist.ts';
import type { RequestHash } from './request.ts';

export interface Collected {
  /** One per request of the file: a reply, a failure, or unfinished when no line accounts for it. */
  verdicts: Map<RequestHash, LineVerdict>;
  /** Replies written to the cache. */
  kept: number;
  /** Lines that are not result lines, and lines naming a request the file does not hold (both ignored). */
  unreadable: number;
  foreign: number;
  /** Result files the server no longer has (providers keep them for a while only): their requests are unfinished. */
  missingFiles: string[];
}

export async function collectBatch(
  record: JournalRecord,
  customIds: readonly RequestHash[],
  client: BatchClient,
  cache: RequestCache,
  patience: Patience,
): Promise<Collected> {
  const ids = new Set(customIds);
  const verdicts = new Map<RequestHash, LineVerdict>();
  let unreadable = 0;
  let foreign = 0;
  const missingFiles: string[] = [];
  for (const fileId of [record.output_file_id, record.error_file_id]) {
    if (!fileId) continue;
    let text: string;
    try {
      text = await persist(`reading file ${fileId} of batch ${record.batch_id}`, patience, () => client.fileText(fileId));
    } catch (err) {
      if (!(err instanceof BatchApiError) || err.status !== 404) throw err;
      missingFiles.push(fileId);
      continue;
    }
    for (const raw of text.split('\n')) {
      if (!raw.trim()) continue;
      const line = readResultLine(raw);
      if (!line) unreadable++;
      else if (!ids.has(line.custom_id)) foreign++;
      // A request named twice keeps its reply, if either line has one.
      else if (!verdicts.get(line.custom_id)?.ok) verdicts.set(line.custom_id, line.verdict);
    }
  }
  for (const id of customIds) {
    if (!verdicts.has(id))
      verdicts.set(id, { ok: false, failure: unfinished(`batch ${record.batch_id} ended ${record.status} with no result for the request`) });
  }
  const replies = [...verdicts].filter((e): e is [RequestHash, Extract<LineVerdict, { ok: true }>] => e[1].ok);
  await mapPool(replies, 16, ([id, v]) => cache.put(id, record.model, v.completion));
  return { verdicts, kept: replies.length, unreadable, foreign, missingFiles };
}
