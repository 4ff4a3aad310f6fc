// A scripted OpenAI-compatible chat-completions server for tests: a real HTTP server on 127.0.0.1
// that the real `openai` SDK talks to. Each request gets the next scripted handler, then a fallback.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Recorded {
  url: string;
  headers: http.IncomingHttpHeaders;
  body: any;
}
export type Handler = (req: http.IncomingMessage, res: http.ServerResponse, body: any) => void;

export const GOOD_DESCRIPTION =
  'Both images show a round yellow emoji face with a wide grin. However, the Source Image has plain open eyes, whereas the Target Image has smiling, crinkled eyes and rosy cheeks.';
export const GOOD_INSTRUCTIONS = ['Give it smiling, crinkled eyes.', 'The same, but with rosy cheeks.', 'Make this one beam with happy eyes.'];

export function isDescribe(body: any): boolean {
  return Array.isArray(body?.messages?.[0]?.content);
}

export function reply(res: http.ServerResponse, body: any, content: string, finishReason = 'stop'): void {
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(
    JSON.stringify({
      id: 'chatcmpl-test',
      object: 'chat.completion',
      created: 0,
      model: body.model,
      choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: finishReason }],
      usage: { prompt_tokens: 100, completion_tokens: 10, total_tokens: 110 },
    }),
  );
}

/** Answers each step with a well-formed reply. */
export const good: Handler = (_req, res, body) => reply(res, body, isDescribe(body) ? GOOD_DESCRIPTION : JSON.stringify(GOOD_INSTRUCTIONS));
export const status500: Handler = (_req, res) => {
  res.writeHead(500, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ error: { message: 'engine overloaded', type: 'server_error' } }));
};
export const status400: Handler = (_req, res) => {
  res.writeHead(400, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ error: { message: 'prompt too long', type: 'invalid_request_error' } }));
};
export const drop: Handler = (req) => req.socket.destroy();
export const hang: Handler = () => {};

export class FakeServer {
  readonly requests: Recorded[] = [];
  private script: Handler[] = [];
  private fallback: Handler = good;
  private readonly server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      this.requests.push({ url: req.url ?? '', headers: req.headers, body });
      (this.script.shift() ?? this.fallback)(req, res, body);
    });
  });

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/v1`;
  }
  /** The next requests get these handlers in order, then `fallback` for the rest. */
  plan(script: Handler[], fallback: Handler = good): void {
    this.requests.length = 0;
    this.script = [...script];
    this.fallback = fallback;
  }
  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
