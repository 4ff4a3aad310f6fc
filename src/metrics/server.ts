// Serves the process's metrics as Prometheus text at /metrics and a liveness answer at /healthz
// (every worker and `run`, with --metrics-port). A worker serves both from its first second, also
// while it waits for a run or loads its models: what the scrape reads is set later (setSources).
// `refresh` runs before each scrape (queue depths are read from Redis then).
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exposition, type MetricsSnapshot } from './registry.ts';
import { redact } from '../secrets/redact.ts';

export interface MetricsServer {
  port: number;
  /** What later scrapes read (a worker knows its queues only once its run is published). */
  setSources(sources: MetricsSources): void;
  close(): Promise<void>;
}

export interface MetricsSources {
  /** Called before each scrape, e.g. to read queue depths. */
  refresh?: () => Promise<void>;
  /** Other threads' latest snapshots, summed with this one's. */
  others?: () => MetricsSnapshot[];
}

/** Where metrics listen unless told: this machine only (Kubernetes manifests pass --metrics-host 0.0.0.0 for Prometheus). */
export const DEFAULT_METRICS_HOST = '127.0.0.1';

/** Listens on `host`:`port` (0: any free port); resolves once listening. */
export async function serveMetrics(port: number, sources: MetricsSources = {}, host = DEFAULT_METRICS_HOST): Promise<MetricsServer> {
  let current = sources;
  const server: Server = createServer((req, res) => {
    const url = req.url?.split('?')[0];
    if (req.method === 'GET' && url === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
      return;
    }
    if (req.method !== 'GET' || url !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('only GET /metrics and /healthz here\n');
      return;
    }
    (async () => {
      await current.refresh?.();
      return exposition(current.others?.());
    })().then(
      // Labels (an endpoint's URL) and errors pass through redact().
      ({ contentType, text }) => res.writeHead(200, { 'content-type': contentType }).end(redact(text)),
      (err: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(redact(`metrics unavailable: ${err.message}\n`)),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return {
    port: (server.address() as AddressInfo).port,
    setSources: (s) => void (current = s),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
