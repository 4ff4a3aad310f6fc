// Submitting a batch without ever submitting it twice. The order of a submission is: upload the
// file; record it with its requests (the intent: its batch is about to be created); create the
// batch; record the batch's id. A kill before the record leaves an unused file and no batch. A kill
// after it (or a create whose reply was lost) leaves a record without a batch id: before creating
// one, the batches are listed, newest first, for one made from that file; only when none is found
// is it created. Listing stops at batches older than the file, which none of its batches can be.
import { type BatchClient, BatchApiError, type BatchObject } from './client.ts';
import { fileContent, type BatchInputFile } from './files.ts';
import { type BatchJournal, type JournalRecord, noteBatch } from './journal.ts';
import { type Patience, persist } from './persist.ts';

export class Submitter {
  constructor(
    private readonly client: BatchClient,
    private readonly journal: BatchJournal,
    private readonly patience: Patience,
  ) {}

  /** Uploads a file, records it, then creates its batch; the record names the batch. */
  async submit(file: BatchInputFile, name: string): Promise<JournalRecord> {
    const content = fileContent(file);
    const up = await persist(`upload of ${name}`, this.patience, () => this.client.uploadFile(name, content));
    const record: JournalRecord = {
      file_id: up.id,
      endpoint: this.client.baseURL,
      model: file.model,
      requests: file.lines.length,
      bytes: content.length,
      file_created_at: up.created_at,
      status: 'uploaded',
      transitions: [{ status: 'uploaded', at: new Date().toISOString(), seen: new Date().toISOString() }],
    };
    await this.journal.recordUpload(
      record,
      file.lines.map((l) => l.custom_id),
    );
    await this.create(record);
    return record;
  }

  /**
   * Gives each record without a batch id its batch: the one made from its file if there is one,
   * else a new one. A file the server refuses to make a batch from (gone since: files expire) is
   * closed in the journal and returned: its requests are free to go in a new file.
   */
  async resume(records: readonly JournalRecord[]): Promise<JournalRecord[]> {
    const pending = records.filter((r) => !r.batch_id);
    if (!pending.length) return [];
    const found = await this.find(pending);
    const abandoned: JournalRecord[] = [];
    for (const record of pending) {
      const batch = found.get(record.file_id);
      if (batch) {
        await this.adopt(record, batch);
        continue;
      }
      try {
        await this.create(record);
      } catch (err) {
        // 400 or 404: this file, not the server (a server without the Batch API refuses the next upload too).
        if (!(err instanceof BatchApiError) || err.transient || (err.status !== 400 && err.status !== 404)) throw err;
        record.abandoned = err.message;
        record.collected_at = new Date().toISOString();
        await this.journal.save(record);
        abandoned.push(record);
      }
    }
    return abandoned;
  }

  /**
   * Creates the batch of a recorded file. A create that fails in passing may still have made the
   * batch, so each new try first looks for it.
   */
  private async create(record: JournalRecord): Promise<void> {
    const what = `batch of file ${record.file_id}`;
    let tried = false;
    const batch = await persist(`creating the ${what}`, this.patience, async () => {
      const made = tried ? (await this.listFor([record])).get(record.file_id) : undefined;
      tried = true;
      return made ?? this.client.createBatch(record.file_id, { megapairs_input_file: record.file_id });
    }).catch((err) => {
      throw err instanceof BatchApiError
        ? new BatchApiError(`${err.message} (journal: ${this.journal.where(record.file_id)})`, err.transient, err.status)
        : err;
    });
    await this.adopt(record, batch);
  }

  /** The batch made from the record's file, into the record: it may have ended already, its result files with it. */
  private async adopt(record: JournalRecord, batch: BatchObject): Promise<void> {
    noteBatch(record, batch);
    await this.journal.save(record);
  }

  private find(records: readonly JournalRecord[]): Promise<Map<string, BatchObject>> {
    return persist('listing batches', this.patience, () => this.listFor(records));
  }

  /** The batch made from each record's file, among the batches listed newest first. */
  private async listFor(records: readonly JournalRecord[]): Promise<Map<string, BatchObject>> {
    const want = new Set(records.map((r) => r.file_id));
    const oldest = Math.min(...records.map((r) => r.file_created_at));
    const found = new Map<string, BatchObject>();
    for await (const batch of this.client.list()) {
      if (want.has(batch.input_file_id) && !found.has(batch.input_file_id)) found.set(batch.input_file_id, batch);
      if (found.size === want.size || batch.created_at < oldest) break;
    }
    return found;
  }
}
