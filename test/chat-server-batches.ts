// The Batch API of the test chat server (chat-server.ts), as OpenAI documents it and hosted
// providers and vLLM serve it: JSONL input files uploaded with purpose `batch`, batches created
// from them that go validating -> in_progress -> finalizing -> completed (or failed, expired,
// cancelling -> cancelled), output and error files of result lines in no particular order.
//
// Each line is answered by the server's own chat-completions route (a real request to itself),
// so the scripted plan, the fallback, the fault rates, latency and slots answer a batch line as
// they answer an online request, and a deterministic reply is the same either way. A batch's
// behaviour is set per server (`configure`) or for the next batches in order (`plan`): time spent
// in each state, lines answered at once, where non-200 lines go, a hold after some lines (until
// the batch expires or is cancelled), an expiry, a late reply to the create, the file limits.
//
// It counts what a test asserts on: files uploaded, batches created, and how many times each
// custom_id and each request body (sha256 of its JSON, i.e. requestHash) was submitted in a batch.
import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import http from 'node:http';

export interface BatchBehaviour {
  /** Time spent in validating, and at least in in_progress, finalizing, cancelling. */
  validatingMs: number;
  inProgressMs: number;
  finalizingMs: number;
  cancellingMs: number;
  /** Lines answered at once. */
  concurrency: number;
  /** A line unanswered this long goes to the error file (a hung request). */
  lineTimeoutMs: number;
  /** Answer only this many lines, then wait for the expiry or a cancel. */
  holdAfterLines?: number;
  /**
   * The batch expires this long after its creation (a held batch once it holds), its unfinished
   * lines in the error file as batch_expired.
   */
  expireAfterMs?: number;
  /** Where lines answered with a status other than 200 go: the error file (OpenAI), the output file (vLLM), or each in turn. */
  nonOkTo: 'error_file' | 'output' | 'alternate';
  /** The batch exists at once; the reply to the create comes this much later (a reply lost to a kill). */
  createReplyDelayMs: number;
  /** Validation limits of an input file. */
  maxRequests: number;
  maxBytes: number;
}

export const BATCH_DEFAULTS: BatchBehaviour = {
  validatingMs: 20,
  inProgressMs: 20,
  finalizingMs: 20,
  cancellingMs: 20,
  concurrency: 8,
  lineTimeoutMs: 30_000,
  nonOkTo: 'error_file',
  createReplyDelayMs: 0,
  maxRequests: 50_000,
  maxBytes: 200 * 1024 * 1024,
};

type Status = 'validating' | 'failed' | 'in_progress' | 'finalizing' | 'completed' | 'expired' | 'cancelling' | 'cancelled';

export interface FileObject {
  id: string;
  object: 'file';
  bytes: number;
  created_at: number;
  filename: string;
  purpose: string;
  status: 'processed';
}

export interface BatchObject {
  id: string;
  object: 'batch';
  endpoint: string;
  errors: { object: 'list'; data: { code: string; message: string; param: null; line: number | null }[] } | null;
  input_file_id: string;
  completion_window: string;
  status: Status;
  output_file_id: string | null;
  error_file_id: string | null;
  created_at: number;
  in_progress_at: number | null;
  expires_at: number;
  finalizing_at: number | null;
  completed_at: number | null;
  failed_at: number | null;
  expired_at: number | null;
  cancelling_at: number | null;
  cancelled_at: number | null;
  request_counts: { total: number; completed: number; failed: number };
  metadata: Record<string, string> | null;
}

interface Line {
  custom_id: string;
  url: string;
  body: unknown;
}

/** What became of a line: a reply (any status), or no reply (the connection dropped, the line timed out). */
type LineResult = { status: number; body: unknown } | { error: { code: string; message: string } };

interface ServerBatch {
  obj: BatchObject;
  behaviour: BatchBehaviour;
  lines: Line[];
  results: Map<number, LineResult>;
  /** Lines in the order they finished. */
  finished: number[];
  halt?: 'expired' | 'cancelled';
  halted: Promise<void>;
  stopNow: () => void;
  /** Resolves once the batch has answered as many lines as its hold lets it. */
  holding: Promise<void>;
  nowHolding: () => void;
}

const now = () => Math.floor(Date.now() / 1000);
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, Math.max(0, ms)));
const isObject = (v: unknown): v is Record<string, any> => typeof v === 'object' && v !== null && !Array.isArray(v);
export const bodyHash = (body: unknown) => createHash('sha256').update(JSON.stringify(body)).digest('hex');

function send(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

function refuse(res: http.ServerResponse, status: number, message: string, param: string | null = null): void {
  send(res, status, { error: { message, type: 'invalid_request_error', param, code: null } });
}

export class BatchApi {
  /** 'file' (FileObject), 'batch-created', 'status' (BatchObject), 'line' (BatchObject, line number). */
  readonly events = new EventEmitter();
  filesUploaded = 0;
  batchesCreated = 0;
  linesAnswered = 0;
  /** Times each custom_id and each body (sha256 of its JSON) was submitted in a batch. */
  readonly submittedByCustomId = new Map<string, number>();
  readonly submittedByBody = new Map<string, number>();
  readonly files = new Map<string, { obj: FileObject; bytes: Buffer }>();
  /** In creation order. */
  readonly batches = new Map<string, ServerBatch>();
  private defaults: BatchBehaviour = BATCH_DEFAULTS;
  private script: Partial<BatchBehaviour>[] = [];
  private seq = 0;
  /** Connections of the lines' requests to the server's own route, kept open between lines. */
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  /** While paused, batches that reach in_progress answer no line. */
  private gate?: { open: Promise<void>; release: () => void };

  /** `origin`: where the server's own chat-completions route answers, e.g. http://127.0.0.1:1234. */
  constructor(private readonly origin: () => string) {}

  static handles(url: string | undefined): boolean {
    return /^\/v1\/(files|batches)(\/|\?|$)/.test(url ?? '');
  }

  /** Behaviour of every batch from now on (over the defaults). */
  configure(behaviour: Partial<BatchBehaviour> = {}): void {
    this.defaults = { ...BATCH_DEFAULTS, ...behaviour };
  }

  /** The next batches created get these behaviours (over the configured ones) in order, then the configured one. */
  plan(behaviours: Partial<BatchBehaviour>[]): void {
    this.script = [...behaviours];
  }

  /** Batches that reach in_progress from now on stay there, answering nothing, until resume(). */
  pause(): void {
    if (this.gate) return;
    let release = () => {};
    const open = new Promise<void>((resolve) => (release = resolve));
    this.gate = { open, release };
  }

  resume(): void {
    this.gate?.release();
    this.gate = undefined;
  }

  /** How many custom_ids were submitted more than once. */
  get submittedTwice(): number {
    return [...this.submittedByCustomId.values()].filter((n) => n > 1).length;
  }

  handle(req: http.IncomingMessage, res: http.ServerResponse, body: Buffer): void {
    this.route(req, res, body).catch((err: Error) => {
      if (!res.headersSent) send(res, 500, { error: { message: `test server: ${err.message}`, type: 'server_error' } });
    });
  }

  private async route(req: http.IncomingMessage, res: http.ServerResponse, body: Buffer): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x');
    const parts = url.pathname.split('/').filter(Boolean).slice(1); // past "v1"
    const [kind, id, action] = parts;
    if (kind === 'files') {
      if (req.method === 'POST' && !id) return this.upload(req, res, body);
      const file = id ? this.files.get(id) : undefined;
      if (req.method === 'GET' && id && !file) return refuse(res, 404, `No such File object: ${id}`, 'id');
      if (req.method === 'GET' && file && !action) return send(res, 200, file.obj);
      if (req.method === 'GET' && file && action === 'content') {
        res.writeHead(200, { 'content-type': 'application/octet-stream' });
        return void res.end(file.bytes);
      }
    }
    if (kind === 'batches') {
      if (req.method === 'POST' && !id) return this.create(res, body);
      if (req.method === 'GET' && !id) return this.list(res, url.searchParams);
      const batch = id ? this.batches.get(id) : undefined;
      if (id && !batch) return refuse(res, 404, `No such Batch object: ${id}`, 'id');
      if (req.method === 'GET' && batch && !action) return send(res, 200, batch.obj);
      if (req.method === 'POST' && batch && action === 'cancel') return this.cancel(res, batch);
    }
    refuse(res, 404, `no route ${req.method} ${url.pathname}`);
  }

  /** POST /v1/files: multipart/form-data with `purpose` and `file`, as the SDK sends it. */
  private async upload(req: http.IncomingMessage, res: http.ServerResponse, body: Buffer): Promise<void> {
    let form: FormData;
    try {
      form = await new Response(new Blob([new Uint8Array(body)]), { headers: { 'content-type': String(req.headers['content-type']) } }).formData();
    } catch (err) {
      return refuse(res, 400, `the upload is not multipart/form-data: ${(err as Error).message}`);
    }
    const purpose = form.get('purpose');
    const file = form.get('file');
    if (purpose !== 'batch') return refuse(res, 400, `this server takes files with purpose "batch" only, not ${JSON.stringify(purpose)}`, 'purpose');
    if (!(file instanceof Blob)) return refuse(res, 400, 'the upload has no file', 'file');
    const filename = (file as File).name ?? '';
    if (!filename.endsWith('.jsonl')) return refuse(res, 400, `a batch input file must be .jsonl, not ${JSON.stringify(filename)}`, 'file');
    const bytes = Buffer.from(await file.arrayBuffer());
    const obj = this.storeFile(filename, 'batch', bytes);
    this.filesUploaded++;
    this.events.emit('file', obj);
    send(res, 200, obj);
  }

  private storeFile(filename: string, purpose: string, bytes: Buffer): FileObject {
    const obj: FileObject = {
      id: `file-${String(++this.seq).padStart(6, '0')}`,
      object: 'file',
      bytes: bytes.length,
      created_at: now(),
      filename,
      purpose,
      status: 'processed',
    };
    this.files.set(obj.id, { obj, bytes });
    return obj;
  }

  private async create(res: http.ServerResponse, raw: Buffer): Promise<void> {
    let params: any;
    try {
      params = JSON.parse(raw.toString('utf8'));
    } catch {
      return refuse(res, 400, 'the body is not JSON');
    }
    const file = this.files.get(params?.input_file_id);
    if (!file) return refuse(res, 404, `No such File object: ${params?.input_file_id}`, 'input_file_id');
    if (file.obj.purpose !== 'batch') return refuse(res, 400, `file ${file.obj.id} has purpose ${file.obj.purpose}, not batch`, 'input_file_id');
    if (params.endpoint !== '/v1/chat/completions') return refuse(res, 400, `endpoint ${JSON.stringify(params.endpoint)} is not served here`, 'endpoint');
    if (params.completion_window !== '24h') return refuse(res, 400, `completion_window must be "24h"`, 'completion_window');
    if (params.metadata != null && (!isObject(params.metadata) || Object.keys(params.metadata).length > 16))
      return refuse(res, 400, 'metadata must be an object of at most 16 keys', 'metadata');
    const behaviour = { ...this.defaults, ...this.script.shift() };
    const created = now();
    const obj: BatchObject = {
      id: `batch_${String(++this.seq).padStart(6, '0')}`,
      object: 'batch',
      endpoint: params.endpoint,
      errors: null,
      input_file_id: file.obj.id,
      completion_window: '24h',
      status: 'validating',
      output_file_id: null,
      error_file_id: null,
      created_at: created,
      in_progress_at: null,
      expires_at: created + 86_400,
      finalizing_at: null,
      completed_at: null,
      failed_at: null,
      expired_at: null,
      cancelling_at: null,
      cancelled_at: null,
      request_counts: { total: 0, completed: 0, failed: 0 },
      metadata: params.metadata ?? null,
    };
    let stopNow = () => {};
    const halted = new Promise<void>((resolve) => (stopNow = resolve));
    let nowHolding = () => {};
    const holding = new Promise<void>((resolve) => (nowHolding = resolve));
    const batch: ServerBatch = { obj, behaviour, lines: [], results: new Map(), finished: [], halted, stopNow, holding, nowHolding };
    this.batches.set(obj.id, batch);
    this.batchesCreated++;
    this.countSubmissions(file.bytes);
    this.events.emit('batch-created', obj);
    if (behaviour.expireAfterMs !== undefined) {
      const expire = () => this.halt(batch, 'expired');
      // A held batch expires with exactly its held lines done, however slow the machine.
      const timer = setTimeout(() => (behaviour.holdAfterLines === undefined ? expire() : void holding.then(expire)), behaviour.expireAfterMs);
      timer.unref();
    }
    void this.run(batch);
    // The reply is sent late without holding the test process open (its client may be gone).
    if (behaviour.createReplyDelayMs) setTimeout(() => !res.destroyed && send(res, 200, obj), behaviour.createReplyDelayMs).unref();
    else send(res, 200, obj);
  }

  /** Every line that names a custom_id counts as submitted, whether or not the batch passes validation. */
  private countSubmissions(bytes: Buffer): void {
    for (const text of bytes.toString('utf8').split('\n')) {
      let line: any;
      try {
        line = JSON.parse(text);
      } catch {
        continue;
      }
      if (typeof line?.custom_id === 'string') this.submittedByCustomId.set(line.custom_id, (this.submittedByCustomId.get(line.custom_id) ?? 0) + 1);
      if (line?.body !== undefined) {
        const h = bodyHash(line.body);
        this.submittedByBody.set(h, (this.submittedByBody.get(h) ?? 0) + 1);
      }
    }
  }

  private list(res: http.ServerResponse, query: URLSearchParams): void {
    const limit = Math.min(100, Math.max(1, Number(query.get('limit') ?? 20) || 20));
    const all = [...this.batches.values()].map((b) => b.obj).reverse();
    const after = query.get('after');
    const from = after ? all.findIndex((b) => b.id === after) + 1 : 0;
    const data = all.slice(from, from + limit);
    send(res, 200, { object: 'list', data, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null, has_more: from + limit < all.length });
  }

  private cancel(res: http.ServerResponse, batch: ServerBatch): void {
    const s = batch.obj.status;
    if (s !== 'validating' && s !== 'in_progress' && s !== 'finalizing') return refuse(res, 409, `Cannot cancel a batch with status ${s}`);
    this.setStatus(batch, 'cancelling');
    this.halt(batch, 'cancelled');
    send(res, 200, batch.obj);
  }

  private halt(batch: ServerBatch, why: 'expired' | 'cancelled'): void {
    if (batch.halt || ['completed', 'failed', 'expired', 'cancelled'].includes(batch.obj.status)) return;
    batch.halt = why;
    batch.stopNow();
  }

  private setStatus(batch: ServerBatch, status: Status): void {
    batch.obj.status = status;
    (batch.obj as any)[`${status}_at`] = now();
    this.events.emit('status', batch.obj);
  }

  /** Waits `ms`, or less when the batch is halted. */
  private wait(batch: ServerBatch, ms: number): Promise<void> {
    return Promise.race([sleep(ms), batch.halted]);
  }

  private async run(batch: ServerBatch): Promise<void> {
    const b = batch.behaviour;
    await this.wait(batch, b.validatingMs);
    if (batch.halt) return this.end(batch);
    const errors = this.validate(batch);
    if (errors.length) {
      batch.obj.errors = { object: 'list', data: errors };
      return this.setStatus(batch, 'failed');
    }
    batch.obj.request_counts.total = batch.lines.length;
    this.setStatus(batch, 'in_progress');
    const started = Date.now();
    if (this.gate) await Promise.race([this.gate.open, batch.halted]);
    await this.answerLines(batch);
    batch.nowHolding();
    if (!batch.halt && batch.results.size < batch.lines.length) await batch.halted; // held: until expiry or cancel
    if (batch.halt) return this.end(batch);
    await this.wait(batch, b.inProgressMs - (Date.now() - started));
    if (batch.halt) return this.end(batch);
    this.setStatus(batch, 'finalizing');
    await this.wait(batch, b.finalizingMs);
    return this.end(batch);
  }

  /** Validation as OpenAI does it: each line a POST to the batch's endpoint with a unique custom_id and a body; one model; within the limits. */
  private validate(batch: ServerBatch): NonNullable<BatchObject['errors']>['data'] {
    const { maxRequests, maxBytes } = batch.behaviour;
    const bytes = this.files.get(batch.obj.input_file_id)!.bytes;
    const texts = bytes.toString('utf8').split('\n');
    if (texts.at(-1) === '') texts.pop();
    const errors: NonNullable<BatchObject['errors']>['data'] = [];
    const fail = (code: string, line: number, message: string) => errors.push({ code, message, param: null, line });
    if (texts.length > maxRequests)
      fail('too_many_requests', maxRequests + 1, `a batch input file holds at most ${maxRequests} requests; this one has ${texts.length}`);
    let size = 0;
    for (const [i, text] of texts.entries()) {
      size += Buffer.byteLength(text) + 1;
      if (size > maxBytes) {
        fail('file_too_large', i + 1, `a batch input file is at most ${maxBytes} bytes; this one passes it at this line`);
        break;
      }
    }
    const seen = new Set<string>();
    let model: string | undefined;
    for (const [i, text] of texts.entries()) {
      if (errors.length >= 20) break;
      const n = i + 1;
      let line: any;
      try {
        line = JSON.parse(text);
      } catch {
        fail('invalid_json_line', n, 'This line is not parseable as valid JSON.');
        continue;
      }
      if (!isObject(line) || typeof line.custom_id !== 'string' || !line.custom_id) {
        fail('missing_required_parameter', n, 'The line has no custom_id.');
        continue;
      }
      if (seen.has(line.custom_id)) fail('duplicate_custom_id', n, `The custom_id ${line.custom_id} is used on an earlier line.`);
      seen.add(line.custom_id);
      if (line.method !== 'POST') fail('invalid_method', n, `The method must be POST, not ${JSON.stringify(line.method)}.`);
      if (line.url !== batch.obj.endpoint)
        fail('mismatched_endpoint', n, `The url ${JSON.stringify(line.url)} is not the batch's endpoint ${batch.obj.endpoint}.`);
      const body = line.body;
      if (!isObject(body) || typeof body.model !== 'string' || !Array.isArray(body.messages)) {
        fail('invalid_request', n, 'The body must be a chat completion request with a model and a list of messages.');
        continue;
      }
      model ??= body.model;
      if (body.model !== model) fail('mismatched_model', n, `All requests of a batch must use one model: ${body.model} is not ${model}.`);
      batch.lines.push({ custom_id: line.custom_id, url: line.url, body });
    }
    return errors;
  }

  /** Answers lines, `concurrency` at once, until all are done, the hold is reached, or the batch is halted. */
  private async answerLines(batch: ServerBatch): Promise<void> {
    const { concurrency, holdAfterLines } = batch.behaviour;
    const limit = Math.min(batch.lines.length, holdAfterLines ?? Infinity);
    let next = 0;
    const worker = async () => {
      while (next < limit && !batch.halt) {
        const i = next++;
        const result = await this.answerLine(batch, batch.lines[i]);
        batch.results.set(i, result);
        batch.finished.push(i);
        if ('status' in result && result.status === 200) batch.obj.request_counts.completed++;
        else batch.obj.request_counts.failed++;
        this.linesAnswered++;
        this.events.emit('line', batch.obj, i + 1);
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, limit)) }, worker));
  }

  /** A line as an online request to this server's own route: same handlers, same faults. */
  private answerLine(batch: ServerBatch, line: Line): Promise<LineResult> {
    const payload = JSON.stringify(line.body);
    return new Promise<LineResult>((resolve) => {
      const failed = (code: string, message: string) => resolve({ error: { code, message } });
      const req = http.request(
        `${this.origin()}${line.url}`,
        {
          method: 'POST',
          agent: this.agent,
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload), 'x-megapairs-batch': batch.obj.id },
          timeout: batch.behaviour.lineTimeoutMs,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', (err) => failed('server_error', `The request failed: ${err.message}`));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let body: unknown;
            try {
              body = JSON.parse(text);
            } catch {
              body = text; // a reply that is not JSON is passed on as it came
            }
            resolve({ status: res.statusCode ?? 0, body });
          });
        },
      );
      req.on('timeout', () => {
        req.destroy();
        failed('timeout', 'The request timed out.');
      });
      req.on('error', (err) => failed('server_error', `The request failed: ${err.message}`));
      req.end(payload);
    });
  }

  /** The batch ends: completed, or as halted; its output and error files are written. */
  private async end(batch: ServerBatch): Promise<void> {
    const status = batch.halt ?? 'completed';
    if (status === 'cancelled') await sleep(batch.behaviour.cancellingMs);
    const output: string[] = [];
    const errors: string[] = [];
    let nonOk = 0;
    // Newest first: result files are in no particular order, and a reader must not rely on one.
    for (const i of [...batch.finished].reverse()) {
      const line = batch.lines[i];
      const r = batch.results.get(i)!;
      const id = `batch_req_${batch.obj.id}_${i + 1}`;
      if ('error' in r) {
        errors.push(JSON.stringify({ id, custom_id: line.custom_id, response: null, error: r.error }));
        continue;
      }
      const text = JSON.stringify({
        id,
        custom_id: line.custom_id,
        response: { status_code: r.status, request_id: `req_${i + 1}`, body: r.body },
        error: null,
      });
      const to = r.status === 200 ? 'output' : batch.behaviour.nonOkTo === 'alternate' ? (nonOk++ % 2 ? 'output' : 'error_file') : batch.behaviour.nonOkTo;
      (to === 'output' ? output : errors).push(text);
    }
    if (status === 'expired') {
      // As OpenAI: the lines the batch did not run are in the error file. A cancelled batch leaves them out.
      for (const [i, line] of batch.lines.entries()) {
        if (batch.results.has(i)) continue;
        batch.obj.request_counts.failed++;
        errors.push(
          JSON.stringify({
            id: `batch_req_${batch.obj.id}_${i + 1}`,
            custom_id: line.custom_id,
            response: null,
            error: { code: 'batch_expired', message: 'This request could not be executed before the completion window expired.' },
          }),
        );
      }
    }
    const file = (lines: string[], kind: string) =>
      lines.length ? this.storeFile(`${batch.obj.id}_${kind}.jsonl`, 'batch_output', Buffer.from(lines.map((l) => `${l}\n`).join(''))).id : null;
    batch.obj.output_file_id = file(output, 'output');
    batch.obj.error_file_id = file(errors, 'error');
    this.setStatus(batch, status);
  }
}
