#!/usr/bin/env node
// The images' HEALTHCHECK: a worker or `run` started with --metrics-port answers GET /healthz
// (from its first second, also while it waits for a run).
// The port comes from MEGAPAIRS_METRICS_PORT (the images set 9464, the Kubernetes manifests pass
// the same variable to --metrics-port).
const port = process.env.MEGAPAIRS_METRICS_PORT || '9464';
try {
  const res = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(4000) });
  process.exit(res.ok ? 0 : 1);
} catch {
  process.exit(1);
}
