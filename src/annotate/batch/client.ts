// The Batch API of an OpenAI-compatible server (OpenAI, vLLM, hosted providers), through the
// `openai` SDK: upload an input file, create a batch from it, follow it, cancel it, list batches,
// read result files. Ids come from the server and become storage keys (the journal): each is
// checked to be a plain name before it is used.
import OpenAI, { APIConnectionError, APIError, toFile } from 'openai';
import { describeError } from '../../util/error-chain.ts';
import { excerpt } from '../text.ts';

export type BatchObject = OpenAI.Batches.Batch;
export type BatchStatus = BatchObject['status'];

/** States a batch never leaves. */
export const TERMINAL: ReadonlySet<BatchStatus> = new Set(['completed', 'failed', 'expired', 'cancelled']);

export interface BatchClientOptions {
  baseURL: string;
  /** Without one, 'EMPTY' (vLLM takes any key, the SDK refuses none). */
  apiKey?: string;
  /** One call's limit; default the SDK's (10 minutes: an upload of 200 MB takes a while). */
  timeoutMs?: number;
  /** The SDK's own quick retries of a call that may be repeated (never a create); default the SDK's (2). */
  maxRetries?: number;
}

/**
 * A Batch API call that failed. `transient`: the server may answer a later call (unreachable,
 * 429, 5xx); otherwise it refuses this call for good (a wrong key, no Batch API, a bad request).
 */
export class BatchApiError extends Error {
  constructor(
    message: string,
    readonly transient: boolean,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'BatchApiError';
  }
}

/** What a server id may be: it names journal objects in the work storage. */
const PLAIN_ID = /^[A-Za-z0-9_-]{1,128}$/;

export function checkedId(what: string, id: unknown, where: string): string {
  if (typeof id !== 'string' || !PLAIN_ID.test(id))
    throw new BatchApiError(`${where} gave ${what} ${excerpt(JSON.stringify(id) ?? 'undefined')}, not a plain id`, false);
  return id;
}

export class BatchClient {
  readonly baseURL: string;
  // #private: the SDK holds the API key, and no dump of the client may show it.
  readonly #sdk: OpenAI;

  constructor(opts: BatchClientOptions) {
    this.baseURL = opts.baseURL;
    this.#sdk = new OpenAI({
      apiKey: opts.apiKey || 'EMPTY',
      baseURL: opts.baseURL,
      organization: null,
      project: null,
      timeout: opts.timeoutMs,
      maxRetries: opts.maxRetries,
    });
  }

  /** Uploads a JSONL input file with purpose `batch`. */
  async uploadFile(name: string, content: Buffer): Promise<{ id: string; bytes: number; created_at: number }> {
    const file = await this.call('POST /files', async () => this.#sdk.files.create({ file: await toFile(content, name), purpose: 'batch' }));
    return { id: checkedId('a file id', file.id, `POST ${this.baseURL}/files`), bytes: file.bytes, created_at: file.created_at };
  }

  /**
   * Creates a batch. Never retried here: a create whose reply is lost may have made the batch, and
   * a second would run every request again. The caller finds it by listing (journal.ts).
   */
  async createBatch(inputFileId: string, metadata: Record<string, string>): Promise<BatchObject> {
    const batch = await this.call('POST /batches', () =>
      this.#sdk.batches.create({ input_file_id: inputFileId, endpoint: '/v1/chat/completions', completion_window: '24h', metadata }, { maxRetries: 0 }),
    );
    return this.checked(batch, 'POST /batches');
  }

  async retrieve(batchId: string): Promise<BatchObject> {
    return this.checked(await this.call(`GET /batches/${batchId}`, () => this.#sdk.batches.retrieve(batchId)), `GET /batches/${batchId}`);
  }

  async cancel(batchId: string): Promise<BatchObject> {
    return this.checked(await this.call(`POST /batches/${batchId}/cancel`, () => this.#sdk.batches.cancel(batchId)), `POST /batches/${batchId}/cancel`);
  }

  /** Every batch of the account, newest first, page by page; stop early by breaking out. */
  async *list(pageSize = 100): AsyncGenerator<BatchObject> {
    let page = await this.call('GET /batches', () => this.#sdk.batches.list({ limit: pageSize }));
    for (;;) {
      for (const b of page.getPaginatedItems()) yield this.checked(b, 'GET /batches');
      if (!page.hasNextPage()) return;
      const current = page;
      page = await this.call('GET /batches', () => current.getNextPage());
    }
  }

  /** A file's bytes as text (an output or error file). */
  async fileText(fileId: string): Promise<string> {
    return this.call(`GET /files/${fileId}/content`, async () => (await this.#sdk.files.content(fileId)).text());
  }

  private checked(b: BatchObject, where: string): BatchObject {
    const at = `${where} at ${this.baseURL}`;
    checkedId('a batch id', b.id, at);
    checkedId('an input file id', b.input_file_id, at);
    if (b.output_file_id != null) checkedId('an output file id', b.output_file_id, at);
    if (b.error_file_id != null) checkedId('an error file id', b.error_file_id, at);
    return b;
  }

  /** Runs one SDK call; its failure as a BatchApiError naming the call, the server and whether it is worth trying again. */
  private async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      // In the cause's words: "Connection error." alone does not say ECONNREFUSED.
      if (err instanceof APIConnectionError) throw new BatchApiError(`${what} at ${this.baseURL}: ${describeError(err)}`, true);
      if (err instanceof APIError && typeof err.status === 'number') {
        const s = err.status;
        // A 404 on these routes (not on one batch or file, not a create naming a missing file) says the server has no Batch API.
        const route = what === 'POST /files' || what === 'GET /batches';
        const hint = s === 404 && route ? ' (does the server serve the Batch API?)' : s === 401 || s === 403 ? ' (check the API key)' : '';
        throw new BatchApiError(`${what} at ${this.baseURL}: HTTP ${s}: ${excerpt(err.message)}${hint}`, s === 429 || s >= 500, s);
      }
      throw err;
    }
  }
}
