// Messages in the cause's own words: a refused connection says ECONNREFUSED (not a bare "fetch
// failed"), an HTTP error says its status and a body excerpt, and the chain reads outermost first.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import OpenAI from 'openai';
import { UnitLedger } from '../src/ledger/ledger.ts';
import { describeError } from '../src/util/error-chain.ts';

async function listen(handler: Parameters<typeof createServer>[1]): Promise<{ server: Server; url: string }> {
  const server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

/** A port nothing listens on: one a server had a moment ago. */
async function closedPort(): Promise<string> {
  const { server, url } = await listen(() => {});
  await new Promise((r) => server.close(r));
  return url;
}

test('a refused connection is named by its errno code, through fetch and the OpenAI client', async () => {
  const url = await closedPort();
  const err = await fetch(url).catch((e: unknown) => e);
  assert.equal((err as Error).message, 'fetch failed');
  assert.match(describeError(err), /^fetch failed: .*ECONNREFUSED/);

  const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'x', maxRetries: 0 });
  const sdkErr = await client.models.list().catch((e: unknown) => e);
  assert.match(describeError(sdkErr), /ECONNREFUSED/);
  const ledger = new UnitLedger('annotate', 'part-00000');
  ledger.add('pair-1', url, 'connection_error', sdkErr, { retryable: true });
  assert.match(ledger.failures[0].message, /ECONNREFUSED/);
  assert.equal(ledger.failures[0].retryable, true);
});

test('an HTTP error keeps its status and an excerpt of the body', async () => {
  const { server, url } = await listen((_req, res) => {
    res.writeHead(503, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: { message: 'model InternVL2-26B is still loading', type: 'overloaded' } }));
  });
  try {
    const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'x', maxRetries: 0 });
    const err = await client.models.list().catch((e: unknown) => e);
    const text = describeError(err);
    assert.match(text, /503/);
    assert.match(text, /model InternVL2-26B is still loading/);
  } finally {
    server.close();
  }
});

test('a wrapper that repeats its cause says each part once', () => {
  const inner = Object.assign(new Error('connect ECONNREFUSED 10.0.0.1:8000'), { code: 'ECONNREFUSED' });
  const outer = new Error('annotate part-00003 failed: fetch failed', { cause: new Error('fetch failed', { cause: inner }) });
  assert.equal(describeError(outer), 'annotate part-00003 failed: fetch failed: connect ECONNREFUSED 10.0.0.1:8000');
});
