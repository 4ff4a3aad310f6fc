// An HTTP proxy in front of the test S3 server that makes faults happen for real: it answers
// 503 SlowDown or 500 InternalError, destroys the connection before answering, forwards the
// answer and cuts the body partway, or lets the server act and loses its answer. Requests pass through unchanged (Host included), so SigV4
// signatures still verify at the server. Every request is logged for assertions.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export type Fault = 'slowdown' | 'internal-error' | 'reset' | 'cut-body' | 'lost-answer';

export interface FaultRule {
  fault: Fault;
  /** Which requests the rule applies to (all when absent). */
  match?: (req: LoggedRequest) => boolean;
  /** Applies to the first `times` matching requests... */
  times?: number;
  /** ...or to every `every`-th one (unlimited unless `times` is set too). */
  every?: number;
  /** For cut-body: bytes of the body sent before the cut (default: half of it). */
  cutAfter?: number;
}

export interface LoggedRequest {
  method: string;
  url: string;
  range?: string;
  fault?: Fault;
}

const errorXml = (code: string, message: string) =>
  `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message><RequestId>proxy</RequestId></Error>`;

export class FaultProxy {
  readonly log: LoggedRequest[] = [];
  private rules: Array<FaultRule & { seen: number; applied: number }> = [];
  private constructor(
    private readonly server: http.Server,
    readonly endpoint: string,
  ) {}

  static async start(target: { host: string; port: number }): Promise<FaultProxy> {
    let proxy!: FaultProxy;
    const server = http.createServer((req, res) => proxy.handle(req, res, target));
    server.keepAliveTimeout = 1000;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    proxy = new FaultProxy(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    return proxy;
  }

  inject(rule: FaultRule): void {
    this.rules.push({ ...rule, seen: 0, applied: 0 });
  }

  clear(): void {
    this.rules = [];
    this.log.length = 0;
  }

  faults(kind?: Fault): LoggedRequest[] {
    return this.log.filter((r) => r.fault && (!kind || r.fault === kind));
  }

  private pick(entry: LoggedRequest): (FaultRule & { seen: number; applied: number }) | undefined {
    for (const rule of this.rules) {
      if (rule.match && !rule.match(entry)) continue;
      rule.seen++;
      const limited = rule.times !== undefined && rule.applied >= rule.times;
      const due = rule.every ? rule.seen % rule.every === 0 : true;
      if (!limited && due) {
        rule.applied++;
        return rule;
      }
    }
    return undefined;
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse, target: { host: string; port: number }): void {
    const entry: LoggedRequest = { method: req.method!, url: req.url!, range: req.headers.range };
    this.log.push(entry);
    const rule = this.pick(entry);
    entry.fault = rule?.fault;
    if (rule?.fault === 'reset') {
      req.socket.destroy();
      return;
    }
    if (rule?.fault === 'slowdown' || rule?.fault === 'internal-error') {
      req.resume();
      req.on('end', () => {
        const [status, code, msg] =
          rule.fault === 'slowdown' ? [503, 'SlowDown', 'Please reduce your request rate.'] : [500, 'InternalError', 'We encountered an internal error.'];
        const body = req.method === 'HEAD' ? '' : errorXml(code, msg);
        res.writeHead(status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body) });
        res.end(body);
      });
      return;
    }
    const upstream = http.request({ host: target.host, port: target.port, method: req.method, path: req.url, headers: req.headers }, (up) => {
      if (rule?.fault === 'lost-answer') {
        up.resume();
        up.on('end', () => req.socket.destroy());
        return;
      }
      res.writeHead(up.statusCode!, up.headers);
      if (rule?.fault !== 'cut-body') {
        up.pipe(res);
        return;
      }
      const total = Number(up.headers['content-length'] ?? 0);
      let left = rule.cutAfter ?? Math.floor(total / 2);
      up.on('data', (chunk: Buffer) => {
        if (left <= 0) return;
        const part = chunk.subarray(0, left);
        left -= part.length;
        res.write(part);
        if (left <= 0) {
          up.destroy();
          // Let the bytes go out, then drop the connection mid-body.
          setImmediate(() => res.socket?.destroy());
        }
      });
      up.on('end', () => left > 0 && res.end());
    });
    upstream.on('error', () => res.socket?.destroy());
    req.pipe(upstream);
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
