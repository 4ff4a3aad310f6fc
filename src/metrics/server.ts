// Serves the process's metrics as Prometheus text at /metrics (every worker and `run`, with
// --metrics-port). `refresh` runs before each scrape (queue depths are read from Redis then).
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exposition, type MetricsSnapshot } from './registry.ts';

export interface MetricsServer {
  port: number;
  close(): Promise<void>;
}

export interface MetricsSources {
  /** Called before each scrape, e.g. to read queue depths. */
  refresh?: () => Promise<void>;
  /** Other threads' latest snapshots, summed with this one's. */
  others?: () => MetricsSnapshot[];
}

/** Listens on `port` (0: any free port) on every interface; resolves once listening. */
export async function serveMetrics(port: number, sources: MetricsSources = {}): Promise<MetricsServer> {
  const server: Server = createServer((req, res) => {
    if (req.method !== 'GET' || req.url?.split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('only GET /metrics here\n');
      return;
    }
    (async () => {
      await sources.refresh?.();
      return exposition(sources.others?.());
    })().then(
      ({ contentType, text }) => res.writeHead(200, { 'content-type': contentType }).end(text),
      (err: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics unavailable: ${err.message}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
