// The batch journal: what was submitted by batch, kept in work storage beside the request cache so
// every run, retry and worker sees it. A run records each uploaded file with the requests it holds
// before it creates the batch (the intent), then the batch's id, states and times; when the
// replies are in the cache the record is closed. A run killed at any point leaves records that the
// next run adopts: it never submits their requests again (driver.ts, submission.ts).
import { BATCHES_FOLDER, batchRecordPath, batchRequestsPath } from '../../core/layout.ts';
import type { Storage } from '../../storage/storage.ts';
import type { BatchObject, BatchStatus } from './client.ts';
import type { RequestHash } from './request.ts';
import { excerpt } from '../text.ts';

/** A state the batch was in: when it entered it by the server's clock (seconds) where the batch says, and when this side first saw it. */
export interface Transition {
  status: BatchStatus | 'uploaded';
  at: string;
  seen: string;
}

export interface JournalRecord {
  file_id: string;
  /** The server holding the file and its batch (a base URL, never a key): only a driver of that server adopts the record. */
  endpoint: string;
  model: string;
  requests: number;
  bytes: number;
  /** The file's created_at on the server, seconds: its batch was created later, which bounds a listing. */
  file_created_at: number;
  /** Absent while the batch is about to be created (or was, and the reply was lost). */
  batch_id?: string;
  status: Transition['status'];
  transitions: Transition[];
  request_counts?: { total: number; completed: number; failed: number };
  output_file_id?: string;
  error_file_id?: string;
  /** A validation failure's errors, as the server gave them. */
  errors?: { code?: string; message?: string; line?: number | null }[];
  /** When every reply of a terminal batch was in the cache: the record is closed, its requests free to go again. */
  collected_at?: string;
  /** Why a record was closed without results: the server refused to make a batch from its file, or no longer knows its batch. */
  abandoned?: string;
}

/** The requests of an uploaded file, in its line order (line n is custom_ids[n - 1]). */
interface RequestsFile {
  file_id: string;
  custom_ids: RequestHash[];
}

const RECORD_KEY = /^requests\/batches\/([A-Za-z0-9_-]+)\.json$/;

/** When a batch entered `status`, by the server's clock where the batch says, else now. */
export function statusTime(batch: BatchObject, status: BatchStatus): string {
  const field: Record<BatchStatus, number | undefined> = {
    validating: batch.created_at,
    in_progress: batch.in_progress_at,
    finalizing: batch.finalizing_at,
    completed: batch.completed_at,
    failed: batch.failed_at,
    expired: batch.expired_at,
    cancelling: batch.cancelling_at,
    cancelled: batch.cancelled_at,
  };
  const s = field[status];
  return new Date(typeof s === 'number' && s > 0 ? s * 1000 : Date.now()).toISOString();
}

/** Lifecycle order, for states a batch passed between two looks at it. */
const ORDER: BatchStatus[] = ['validating', 'in_progress', 'finalizing', 'cancelling', 'completed', 'failed', 'expired', 'cancelled'];

/** The states a batch went through up to its current one, in lifecycle order, as its timestamps show. */
function passed(batch: BatchObject): BatchStatus[] {
  const at: Partial<Record<BatchStatus, number | null | undefined>> = {
    in_progress: batch.in_progress_at,
    finalizing: batch.finalizing_at,
    cancelling: batch.cancelling_at,
  };
  return ORDER.filter((status) => status === 'validating' || status === batch.status || typeof at[status] === 'number');
}

/** A validation failure's errors kept in a record: the server decides how many and how long, the journal bounds both. */
const MAX_ERRORS = 100;
const MAX_ERROR_CHARS = 1000;

function keptError(e: { code?: unknown; message?: unknown; line?: unknown }): NonNullable<JournalRecord['errors']>[number] {
  return {
    code: typeof e.code === 'string' ? e.code.slice(0, MAX_ERROR_CHARS) : undefined,
    message: typeof e.message === 'string' ? e.message.slice(0, MAX_ERROR_CHARS) : undefined,
    line: Number.isInteger(e.line) ? (e.line as number) : null,
  };
}

/**
 * The batch as the server shows it now, into its record: its state and the states it passed since
 * (with their times), its request counts, its result files, its validation errors. Whether the
 * record changed. The one way a record learns of its batch, whether polled or found by listing.
 */
export function noteBatch(record: JournalRecord, batch: BatchObject): boolean {
  const before = JSON.stringify(record);
  record.batch_id = batch.id;
  for (const status of passed(batch)) {
    if (!record.transitions.some((t) => t.status === status))
      record.transitions.push({ status, at: statusTime(batch, status), seen: new Date().toISOString() });
  }
  const rank = (t: Transition) => (t.status === 'uploaded' ? -1 : ORDER.indexOf(t.status));
  record.transitions.sort((a, b) => rank(a) - rank(b));
  record.status = batch.status;
  if (batch.request_counts) record.request_counts = { ...batch.request_counts };
  if (batch.output_file_id) record.output_file_id = batch.output_file_id;
  if (batch.error_file_id) record.error_file_id = batch.error_file_id;
  if (batch.errors?.data?.length) record.errors = batch.errors.data.slice(0, MAX_ERRORS).map(keptError);
  return JSON.stringify(record) !== before;
}

export class BatchJournal {
  /**
   * Keys of records seen closed: a closed record never opens again, so each round of each unit
   * reads only the open ones, not every record the work storage has gathered.
   */
  private readonly closed = new Set<string>();

  constructor(private readonly work: Storage) {}

  /** Records not yet collected, of batches on `endpoint`: every run's. */
  async open(endpoint: string): Promise<JournalRecord[]> {
    const found: JournalRecord[] = [];
    for await (const key of this.work.list(BATCHES_FOLDER)) {
      if (!RECORD_KEY.test(key) || this.closed.has(key)) continue;
      const record = await this.read(key);
      if (record.collected_at) this.closed.add(key);
      else if (record.endpoint === endpoint) found.push(record);
    }
    return found;
  }

  /** Every record, closed ones too (for reports). */
  async all(): Promise<JournalRecord[]> {
    const found: JournalRecord[] = [];
    for await (const key of this.work.list(BATCHES_FOLDER)) if (RECORD_KEY.test(key)) found.push(await this.read(key));
    return found;
  }

  async requestsOf(fileId: string): Promise<RequestHash[]> {
    const key = batchRequestsPath(fileId);
    const file = this.parse<RequestsFile>(key, await this.work.read(key));
    if (file.file_id !== fileId || !Array.isArray(file.custom_ids)) throw new Error(`${this.work.uri(key)} is not the request list of file ${fileId}`);
    return file.custom_ids;
  }

  /**
   * Records an uploaded file, before its batch is created: the requests first, then the record
   * naming them, so a record is never without its requests.
   */
  async recordUpload(record: JournalRecord, customIds: readonly RequestHash[]): Promise<void> {
    const requests: RequestsFile = { file_id: record.file_id, custom_ids: [...customIds] };
    await this.work.write(batchRequestsPath(record.file_id), JSON.stringify(requests));
    await this.save(record);
  }

  async save(record: JournalRecord): Promise<void> {
    const key = batchRecordPath(record.file_id);
    await this.work.write(key, JSON.stringify(record, null, 1));
    if (record.collected_at) this.closed.add(key);
  }

  /** Where a file's record is, for messages. */
  where(fileId: string): string {
    return this.work.uri(batchRecordPath(fileId));
  }

  private async read(key: string): Promise<JournalRecord> {
    const record = this.parse<JournalRecord>(key, await this.work.read(key));
    if (typeof record?.file_id !== 'string' || typeof record.endpoint !== 'string' || !Array.isArray(record.transitions)) {
      throw new Error(`${this.work.uri(key)} is not a batch journal record (file_id, endpoint, transitions)`);
    }
    // Its file id names the keys it is saved under and its request list: only the one of its own key
    // (a plain id) keeps a save from landing elsewhere and leaving this record open for ever.
    if (record.file_id !== RECORD_KEY.exec(key)![1])
      throw new Error(`${this.work.uri(key)} is the record of another file (file_id ${excerpt(record.file_id)})`);
    return record;
  }

  private parse<T>(key: string, bytes: Buffer): T {
    try {
      return JSON.parse(bytes.toString('utf8')) as T;
    } catch (err) {
      // Our writes are whole or absent, so a record that is not JSON was put there by someone else.
      throw new Error(`${this.work.uri(key)} is not JSON: ${(err as Error).message}`);
    }
  }
}
