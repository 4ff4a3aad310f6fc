// A worker is healthy from its first second: /healthz and /metrics answer while it waits for
// `megapairs run` to publish a run (the Kubernetes probes read /healthz), on 127.0.0.1 unless
// --metrics-host says otherwise.
import assert from 'node:assert/strict';
import { networkInterfaces } from 'node:os';
import { test } from 'node:test';
import { cli, newRun, stop } from './distributed-harness.ts';

const otherAddress = Object.values(networkInterfaces())
  .flat()
  .find((a) => a && a.family === 'IPv4' && !a.internal)?.address;

test('a worker waiting for a run serves /healthz and /metrics, on loopback only', { timeout: 120_000 }, async () => {
  const run = newRun('/nonexistent-input', 'health');
  const worker = cli(['worker', 'cpu', '--config', run.file, '--metrics-port', '0']);
  try {
    const port = Number((await worker.waitFor(/metrics on http:\/\/127\.0\.0\.1:(\d+)\/metrics/))[1]);
    await worker.waitFor(/waiting for `megapairs run`/);
    const health = await fetch(`http://127.0.0.1:${port}/healthz`);
    assert.equal(health.status, 200);
    const metrics = await fetch(`http://127.0.0.1:${port}/metrics`);
    assert.equal(metrics.status, 200);
    assert.match(await metrics.text(), /# TYPE megapairs_units_total counter/);
    if (otherAddress) await assert.rejects(fetch(`http://${otherAddress}:${port}/healthz`), 'metrics listen on loopback unless told');
  } finally {
    await stop([worker]);
  }
});

test('--metrics-host 0.0.0.0 listens on every interface (what the manifests pass for Prometheus)', { timeout: 120_000 }, async () => {
  const run = newRun('/nonexistent-input', 'health-any');
  const worker = cli(['worker', 'cpu', '--config', run.file, '--metrics-port', '0', '--metrics-host', '0.0.0.0']);
  try {
    const port = Number((await worker.waitFor(/metrics on http:\/\/0\.0\.0\.0:(\d+)\/metrics/))[1]);
    assert.equal((await fetch(`http://${otherAddress ?? '127.0.0.1'}:${port}/healthz`)).status, 200);
  } finally {
    await stop([worker]);
  }
});
