// A batch the server refused at validation: nothing in it ran, and sending the same file again
// would meet the same refusal, so the run stops with the server's reasons, each line named with
// the request on it (line n of the file holds the journal's n-th request).
import { excerpt } from '../text.ts';
import type { JournalRecord } from './journal.ts';
import type { RequestHash } from './request.ts';

/** Reasons the message names; the rest are in the journal record. */
const SHOWN = 10;

export class BatchValidationError extends Error {
  constructor(
    readonly record: JournalRecord,
    customIds: readonly RequestHash[],
    journalAt: string,
  ) {
    const errors = record.errors ?? [];
    const reasons = errors.slice(0, SHOWN).map((e) => {
      const line = typeof e.line === 'number' ? e.line : undefined;
      const request = line !== undefined && customIds[line - 1] ? ` (request ${customIds[line - 1]})` : '';
      return `line ${line ?? '?'}${request}: ${excerpt(e.message ?? '', 300)}${e.code ? ` [${e.code}]` : ''}`;
    });
    super(
      `batch ${record.batch_id} failed validation of its input file ${record.file_id} (${record.requests} requests, journal ${journalAt}): ${reasons.join('; ') || 'the server gave no reason'}` +
        (errors.length > SHOWN ? `; ${errors.length - SHOWN} more in the journal` : ''),
    );
    this.name = 'BatchValidationError';
  }
}
