// An OpenAI-compatible chat-completions server for tests and the bench: a real HTTP server on
// 127.0.0.1 that the real `openai` SDK talks to. Two ways to drive it:
//  - scripted: each request gets the next handler of `plan()`, then a fallback;
//  - faults: replies take `latencyMs` in one of `slots` slots (requests beyond them queue, as on
//    vLLM), and each request meets a fault at its set rate (429 with Retry-After, 500, hang, drop,
//    malformed JSON, an off-template reply, a refusal, a short list).
// It counts what it served (requests, in flight, per model, per fault) and can be stopped and
// started again on the same port, which is how "the endpoint is down for a while" happens.
// It also serves the Batch API (/v1/files, /v1/batches: chat-server-batches.ts), each batch line
// answered by the same handlers as an online request.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { BatchApi, type BatchBehaviour } from './chat-server-batches.ts';

export interface Recorded {
  url: string;
  headers: http.IncomingHttpHeaders;
  body: any;
  at: number;
  /** The fault the request met, when the server drew one. */
  fault?: string;
}
export type Handler = (req: http.IncomingMessage, res: http.ServerResponse, body: any) => void;

export const GOOD_DESCRIPTION =
  'Both images show a round yellow emoji face with a wide grin. However, the Source Image has plain open eyes, whereas the Target Image has smiling, crinkled eyes and rosy cheeks.';
export const GOOD_INSTRUCTIONS = ['Give it smiling, crinkled eyes.', 'The same, but with rosy cheeks.', 'Make this one beam with happy eyes.'];

export function isDescribe(body: any): boolean {
  return Array.isArray(body?.messages?.[0]?.content);
}

/** The usage every good reply reports: 110 tokens a request. */
export const USAGE = { prompt_tokens: 100, completion_tokens: 10, total_tokens: 110 };

export function reply(res: http.ServerResponse, body: any, content: string, finishReason = 'stop'): void {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(
    JSON.stringify({
      id: 'chatcmpl-test',
      object: 'chat.completion',
      created: 0,
      model: body.model,
      choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: finishReason }],
      usage: USAGE,
    }),
  );
}

/** A good instruct reply, in the structured-output form when the request asked for it. */
function instructionsReply(body: any, list: string[]): string {
  return body?.response_format?.type === 'json_schema' ? JSON.stringify({ instructions: list }) : JSON.stringify(list);
}

/** Answers each step with a well-formed reply. */
export const good: Handler = (_req, res, body) => reply(res, body, isDescribe(body) ? GOOD_DESCRIPTION : instructionsReply(body, GOOD_INSTRUCTIONS));
export const status500: Handler = (_req, res) => {
  res.writeHead(500, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ error: { message: 'engine overloaded', type: 'server_error' } }));
};
export const status400: Handler = (_req, res) => {
  res.writeHead(400, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ error: { message: 'prompt too long', type: 'invalid_request_error' } }));
};
export const rateLimited =
  (retryAfterS: number): Handler =>
  (_req, res) => {
    res.writeHead(429, { 'content-type': 'application/json', 'retry-after': String(retryAfterS) });
    res.end(JSON.stringify({ error: { message: 'rate limit exceeded', type: 'rate_limit_error' } }));
  };
/** A 400 whose error body echoes the request's headers, as some proxies and servers do: the API key included. */
export const echoHeaders: Handler = (req, res) => {
  res.writeHead(400, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ error: { message: `bad request; you sent Authorization: ${req.headers.authorization}`, type: 'invalid_request_error' } }));
};
export const drop: Handler = (req) => req.socket.destroy();
export const hang: Handler = () => {};
export const badJson: Handler = (_req, res) => {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end('{"id": "chatcmpl-test", "choices": [');
};
export const refusal: Handler = (_req, res, body) =>
  reply(
    res,
    body,
    isDescribe(body) ? "I'm sorry, I can't help with that." : JSON.stringify(["I'm sorry, I can't help with that.", 'I cannot do this.', 'Sorry.']),
  );
export const offTemplate: Handler = (_req, res, body) => reply(res, body, isDescribe(body) ? 'Two pictures.' : 'Sure! Make it beam.');
export const shortList: Handler = (_req, res, body) =>
  reply(res, body, isDescribe(body) ? GOOD_DESCRIPTION : instructionsReply(body, GOOD_INSTRUCTIONS.slice(0, 1)));

/** Share of requests meeting each fault, 0..1 each (their sum at most 1). */
export interface FaultRates {
  rate_limited?: number;
  server_error?: number;
  hang?: number;
  drop?: number;
  bad_json?: number;
  off_template?: number;
  refusal?: number;
  short_list?: number;
}

export interface ServerOptions {
  /** Time a reply takes once it holds a slot. Default 0. */
  latencyMs?: number;
  /** Requests served at once; more wait in a queue. Default: unlimited. */
  slots?: number;
  faults?: FaultRates;
  /** Retry-After of the 429s, seconds. Default 1. */
  retryAfterS?: number;
  /** Seed of the fault draws, so a run meets the same faults. */
  seed?: number;
  /** Models GET /models lists. Default: whatever is asked for is served (an empty list means none). */
  models?: string[];
  /** How batches behave (chat-server-batches.ts: BATCH_DEFAULTS). */
  batch?: Partial<BatchBehaviour>;
}

/** mulberry32: a small seeded generator for fault draws. */
function generator(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export class FakeServer {
  readonly requests: Recorded[] = [];
  /** Requests received and not yet answered in full (hung ones included until their socket closes). */
  inFlight = 0;
  /** When each answered request finished, for "in flight at the kill" counts. */
  readonly answeredAt: number[] = [];
  readonly faultCounts: Record<string, number> = {};
  /** Most requests holding a slot at once, as measured here; and per model. */
  maxBusy = 0;
  readonly maxBusyByModel: Record<string, number> = {};
  private readonly busyByModel: Record<string, number> = {};
  private busy = 0;
  private readonly waiting: (() => void)[] = [];
  private script: Handler[] = [];
  private fallback: Handler = good;
  private opts: ServerOptions = {};
  private draw = generator(1);
  private port = 0;
  private server?: http.Server;
  /** The Batch API: its files, batches and counts (submissions per custom_id and per body). */
  readonly batches = new BatchApi(() => `http://127.0.0.1:${this.port}`);

  constructor(opts: ServerOptions = {}) {
    this.configure(opts);
  }

  /** New latency, slots and fault rates for the requests from now on. */
  configure(opts: ServerOptions): void {
    this.opts = { ...opts };
    this.draw = generator(opts.seed ?? 1);
    this.batches.configure(opts.batch);
  }

  /** Listens on a random port the first time, then on the same one again after stop(). */
  async start(): Promise<string> {
    const server = http.createServer((req, res) => this.handle(req, res));
    server.keepAliveTimeout = 30_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.server = server;
    this.port = (server.address() as AddressInfo).port;
    return this.url;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}/v1`;
  }

  /** The next requests get these handlers in order, then `fallback` for the rest. */
  plan(script: Handler[], fallback: Handler = good): void {
    this.requests.length = 0;
    this.answeredAt.length = 0;
    this.script = [...script];
    this.fallback = fallback;
  }

  /**
   * Requests in flight at `at`, from the client's side: those still unanswered, and those whose
   * reply went out after `at - ms` (on the wire or not yet written down when the client died).
   */
  inFlightAt(at: number, ms: number): number {
    return this.inFlight + this.answeredAt.filter((t) => t > at - ms).length;
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.method === 'GET' && req.url?.endsWith('/models')) return this.models(res);
      if (BatchApi.handles(req.url)) return this.batches.handle(req, res, Buffer.concat(chunks));
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      this.requests.push({ url: req.url ?? '', headers: req.headers, body, at: Date.now() });
      this.inFlight++;
      let counted = true;
      const done = () => {
        if (!counted) return;
        counted = false;
        this.inFlight--;
        this.answeredAt.push(Date.now());
      };
      res.on('finish', done);
      res.on('close', done);
      const scripted = this.script.shift();
      if (scripted) return scripted(req, res, body);
      this.serve(req, res, body);
    });
  }

  private models(res: http.ServerResponse): void {
    res.writeHead(200, { 'content-type': 'application/json' });
    const names = this.opts.models ?? [...new Set(this.requests.map((r) => r.body?.model as string))];
    res.end(JSON.stringify({ object: 'list', data: names.map((id) => ({ id, object: 'model', owned_by: 'test' })) }));
  }

  /** Draws the request's fault; a request with none (or a 429, a drop, a hang) takes no slot. */
  private serve(req: http.IncomingMessage, res: http.ServerResponse, body: any): void {
    const fault = this.fault();
    if (fault) {
      this.faultCounts[fault] = (this.faultCounts[fault] ?? 0) + 1;
      this.requests[this.requests.length - 1].fault = fault;
    }
    if (fault === 'rate_limited') return rateLimited(this.opts.retryAfterS ?? 1)(req, res, body);
    if (fault === 'hang') return hang(req, res, body);
    if (fault === 'drop') return drop(req, res, body);
    const handler: Handler =
      fault === 'server_error'
        ? status500
        : fault === 'bad_json'
          ? badJson
          : fault === 'off_template'
            ? offTemplate
            : fault === 'refusal'
              ? refusal
              : fault === 'short_list'
                ? shortList
                : this.fallback;
    this.inSlot(res, body.model, () => handler(req, res, body));
  }

  private fault(): keyof FaultRates | undefined {
    const faults = this.opts.faults;
    if (!faults) return undefined;
    let x = this.draw();
    for (const [name, rate] of Object.entries(faults) as [keyof FaultRates, number][]) {
      if (x < rate) return name;
      x -= rate;
    }
    return undefined;
  }

  private inSlot(res: http.ServerResponse, model: string, answer: () => void): void {
    const slots = this.opts.slots ?? Infinity;
    const run = () => {
      this.busy++;
      this.maxBusy = Math.max(this.maxBusy, this.busy);
      this.busyByModel[model] = (this.busyByModel[model] ?? 0) + 1;
      this.maxBusyByModel[model] = Math.max(this.maxBusyByModel[model] ?? 0, this.busyByModel[model]);
      const free = () => {
        this.busy--;
        this.busyByModel[model]--;
        this.waiting.shift()?.();
      };
      const latency = this.opts.latencyMs ?? 0;
      if (!latency) {
        answer();
        free();
        return;
      }
      const t = setTimeout(() => {
        if (!res.destroyed) answer();
        free();
      }, latency);
      // A client that gives up frees the slot at once (vLLM aborts the sequence).
      res.on('close', () => {
        if (!res.writableFinished) {
          clearTimeout(t);
          free();
        }
      });
    };
    if (this.busy < slots) run();
    else this.waiting.push(run);
  }
}
