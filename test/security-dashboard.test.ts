// The dashboard lets no one in: it listens on 127.0.0.1 only, shows the run read-only (every
// action refused, the queues untouched), and with $MEGAPAIRS_DASHBOARD_TOKEN set answers only the
// token's holder (a bearer header or the login cookie), who then may act. A host other than
// loopback without a token is a usage error.
import assert from 'node:assert/strict';
import { networkInterfaces } from 'node:os';
import { test } from 'node:test';
import { parseConfig } from '../src/config/load.ts';
import { connectRedis } from '../src/runner/distributed/connection.ts';
import { enqueueRun } from '../src/runner/distributed/phases.ts';
import { RunQueues } from '../src/runner/distributed/queues.ts';
import { cli, newRun, stop } from './distributed-harness.ts';

const TOKEN = 'dashboard-token-0123456789abcdef';

async function enqueued(name: string) {
  const run = newRun('/nonexistent-input', name);
  const config = parseConfig(run.obj);
  const connection = await connectRedis(config, 'test');
  const rq = new RunQueues(config, connection);
  await enqueueRun(rq, `${name}key`); // no worker: the start barrier waits in the control queue
  return { run, rq, connection, close: async () => (await rq.close(), await connection.quit()) };
}

async function board(file: string, env: NodeJS.ProcessEnv = {}, args: string[] = []) {
  const proc = cli(['dashboard', '--config', file, '--port', '0', ...args], { ...process.env, MEGAPAIRS_DASHBOARD_TOKEN: '', ...env });
  const port = Number((await proc.waitFor(/at http:\/\/127\.0\.0\.1:(\d+)\//))[1]);
  return { proc, base: `http://127.0.0.1:${port}`, port };
}

/** An address of this machine other than loopback, when it has one. */
const otherAddress = Object.values(networkInterfaces())
  .flat()
  .find((a) => a && a.family === 'IPv4' && !a.internal)?.address;

test('without a token the dashboard is on 127.0.0.1 and read-only: no action changes the run', { timeout: 120_000 }, async () => {
  const { run, rq, close } = await enqueued('dashro');
  const b = await board(run.file);
  try {
    assert.match(b.proc.out(), /read-only/);
    assert.equal((await fetch(`${b.base}/`)).status, 200);
    const api = await fetch(`${b.base}/api/queues?activeQueue=test.control&status=waiting&page=1`);
    assert.equal(api.status, 200);
    const actions: Array<[string, string, unknown?]> = [
      ['PUT', '/api/queues/test.control/clean/waiting'],
      ['PUT', '/api/queues/test.control/empty'],
      ['PUT', '/api/queues/test.control/pause'],
      ['PUT', '/api/queues/pause'],
      ['POST', '/api/queues/test.catalog/add', { name: 'catalog', data: { run: 'dashrokey', stage: 'catalog', unit: { number: '9/../x' } } }],
      ['PUT', '/api/queues/test.control/start.dashrokey/remove'],
    ];
    for (const [method, url, body] of actions) {
      const res = await fetch(`${b.base}${url}`, { method, headers: { 'content-type': 'application/json' }, body: body ? JSON.stringify(body) : undefined });
      assert.equal(res.status, 403, `${method} ${url}`);
    }
    assert.equal(await rq.queue('control').getWaitingCount(), 1, 'the start barrier is still there');
    assert.equal(await rq.queue('control').isPaused(), false);
    assert.equal(await rq.queue('catalog').count(), 0, 'no job was added');
    if (otherAddress) await assert.rejects(fetch(`http://${otherAddress}:${b.port}/`), 'not reachable from another address');
  } finally {
    await stop([b.proc]);
    await close();
  }
});

test('a host other than loopback without a token is a usage error (exit 2)', { timeout: 60_000 }, async () => {
  const run = newRun('/nonexistent-input', 'dashhost');
  const proc = cli(['dashboard', '--config', run.file, '--port', '0', '--host', '0.0.0.0'], { ...process.env, MEGAPAIRS_DASHBOARD_TOKEN: '' });
  assert.equal((await proc.exited).code, 2);
  assert.match(proc.err(), /MEGAPAIRS_DASHBOARD_TOKEN/);
});

test('with a token every request needs it; its holder may act (bearer header or login cookie)', { timeout: 120_000 }, async () => {
  const { run, rq, close } = await enqueued('dashtok');
  const b = await board(run.file, { MEGAPAIRS_DASHBOARD_TOKEN: TOKEN });
  try {
    const api = `${b.base}/api/queues?activeQueue=test.control&status=waiting&page=1`;
    assert.equal((await fetch(api)).status, 401);
    assert.equal((await fetch(api, { headers: { authorization: 'Bearer wrong-token' } })).status, 401);
    assert.equal((await fetch(`${b.base}/api/queues/test.control/pause`, { method: 'PUT' })).status, 401);
    assert.equal(await rq.queue('control').isPaused(), false);
    const page = await fetch(`${b.base}/`, { redirect: 'manual', headers: { accept: 'text/html' } });
    assert.equal(page.status, 303, 'a browser is sent to the login form');
    assert.equal((await fetch(api, { headers: { authorization: `Bearer ${TOKEN}` } })).status, 200);

    // The login form: a wrong token gets no cookie; the right one a cookie that is not the token.
    const wrong = await fetch(`${b.base}/login`, { method: 'POST', body: new URLSearchParams({ token: 'nope' }), redirect: 'manual' });
    assert.equal(wrong.status, 401);
    assert.equal(wrong.headers.get('set-cookie'), null);
    const login = await fetch(`${b.base}/login`, { method: 'POST', body: new URLSearchParams({ token: TOKEN }), redirect: 'manual' });
    assert.equal(login.status, 303);
    const cookie = login.headers.get('set-cookie')!.split(';')[0];
    assert.ok(!cookie.includes(TOKEN));
    assert.equal((await fetch(api, { headers: { cookie } })).status, 200);
    const pause = await fetch(`${b.base}/api/queues/test.control/pause`, { method: 'PUT', headers: { cookie } });
    assert.equal(pause.status, 200);
    assert.equal(await rq.queue('control').isPaused(), true, "the token's holder may act");
  } finally {
    await stop([b.proc]);
    await close();
  }
});
