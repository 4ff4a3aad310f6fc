// Secrets never recorded: an endpoint whose error body echoes the request's `Authorization` header
// sends the API key back in every error; the ledger entries (on shared work storage), the run's
// output, summary and report, and what the CLI prints carry the variable's name instead.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { parseConfig } from '../src/config/load.ts';
import { redact, redactError, rememberSecrets, secretVariables } from '../src/secrets/redact.ts';
import { echoHeaders, FakeServer, isDescribe, reply, GOOD_DESCRIPTION, GOOD_INSTRUCTIONS, type Handler } from './chat-server.ts';
import { cli } from './distributed-harness.ts';
import { demoConfigObject, filesUnder, sampleSlice, tempDir, writeConfigFile } from './helpers.ts';

process.env.MEGAPAIRS_CACHE = tempDir('secrets-cache');
const KEY = 'sk-secret-0123456789abcdefghijklmnop';
const server = new FakeServer();
let url: string;
before(async () => {
  url = await server.start();
});
after(() => server.stop());

test('the secret variables: every endpoint key, the S3 secret, the Redis password, the dashboard token', () => {
  const config = parseConfig({
    input: { path: 'x' },
    work: 'w',
    output: 'o',
    annotate: { annotator: 'openai', openai: { base_url: 'http://h/v1', mllm: 'm', api_key_env: 'A_KEY', instruct: { api_key_env: 'B_KEY' } } },
  });
  assert.deepEqual(
    secretVariables(config).sort(),
    ['AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'A_KEY', 'B_KEY', 'MEGAPAIRS_DASHBOARD_TOKEN', 'REDIS_PASSWORD'].sort(),
  );
  rememberSecrets(config, { A_KEY: 'aaaaaaaa-key-one', B_KEY: 'bbbbbbbb-key-two', AWS_SECRET_ACCESS_KEY: 'wJalrXUtnFEMI/K7MDENG', A_SHORT: 'x' });
  assert.equal(
    redact('Bearer aaaaaaaa-key-one, then bbbbbbbb-key-two; aws wJalrXUtnFEMI/K7MDENG'),
    'Bearer [$A_KEY], then [$B_KEY]; aws [$AWS_SECRET_ACCESS_KEY]',
  );
  assert.equal(redact('x is short'), 'x is short', 'values under 8 characters are left alone');
  // A unit's error keeps its class (the worker tells a returned unit by it), not the key.
  const err = redactError(new TypeError('401 for aaaaaaaa-key-one'));
  assert.ok(err instanceof TypeError);
  assert.equal(err.message, '401 for [$A_KEY]');
  assert.ok(!err.stack!.includes('aaaaaaaa-key-one'));
});

test('an endpoint that echoes the key in its errors: the key is nowhere in the run folder or what the CLI printed', { timeout: 300_000 }, async () => {
  // Half the describe requests get the echoing 400 (an item's own fault: ledgered), the rest good replies.
  let n = 0;
  const handler: Handler = (req, res, body) => {
    if (isDescribe(body) && n++ % 2 === 0) return echoHeaders(req, res, body);
    reply(res, body, isDescribe(body) ? GOOD_DESCRIPTION : JSON.stringify(GOOD_INSTRUCTIONS));
  };
  server.plan([], handler);
  const input = await sampleSlice();
  const root = tempDir('secrets');
  const file = writeConfigFile(
    root,
    demoConfigObject(input, root, {
      input: { path: input, max_shards: 1, caption: { source: 'txt' } },
      annotate: {
        annotator: 'openai',
        openai: { base_url: url, api_key_env: 'MEGAPAIRS_SECRET_TEST_KEY', mllm: 'internvl2-26b', attempts: 1, concurrency: 4 },
      },
    }),
  );
  const run = cli(['run', '--config', file, '--no-preflight'], { ...process.env, MEGAPAIRS_SECRET_TEST_KEY: KEY });
  await run.exited;
  assert.ok(
    server.requests.some((r) => r.headers.authorization === `Bearer ${KEY}`),
    'the key was sent',
  );

  const ledgered = filesUnder(path.join(root, 'work', 'failures')).map((f) => readFileSync(f, 'utf8'));
  const echoed = ledgered
    .join('')
    .split('\n')
    .filter((l) => l.includes('you sent Authorization'));
  assert.ok(echoed.length > 0, 'the echoing errors are in the ledger');
  for (const line of echoed) assert.match(line, /Authorization: Bearer \[\$MEGAPAIRS_SECRET_TEST_KEY\]/);
  for (const f of filesUnder(root)) assert.ok(!readFileSync(f).includes(KEY), `${f} holds the key`);
  assert.ok(!run.out().includes(KEY) && !run.err().includes(KEY), 'printed');
});
