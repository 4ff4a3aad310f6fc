// What the units of a process share (shared(ctx)): loaded once, a failed load tried again, and
// never served under other artifact keys than those it was loaded under.
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { encoderBroker } from '../src/encoders/encoder-broker.ts';
import { EncoderThread } from '../src/encoders/encoder-thread.ts';
import { OnnxEncoder } from '../src/encoders/onnx-encoder.ts';
import { resolveEncoders } from '../src/encoders/resolve.ts';
import { createContext } from '../src/runner/context.ts';
import { Lazy, LazyMap } from '../src/util/lazy.ts';
import { demoConfig, tempDir } from './helpers.ts';
import { shared } from '../src/stages/shared-resources.ts';

test('Lazy loads once; a failed load, thrown or rejected, is forgotten and loaded again', async () => {
  let loads = 0;
  const once = new Lazy(async () => ++loads);
  assert.equal(await once.get(), 1);
  assert.equal(await once.get(), 1);

  let calls = 0;
  const flaky = new Lazy(async () => {
    if (++calls === 1) throw new Error('not yet');
    return calls;
  });
  await assert.rejects(flaky.get(), /not yet/);
  assert.equal(await flaky.get(), 2);
  assert.equal(await flaky.get(), 2);

  let tries = 0;
  const sync = new Lazy(() => {
    if (++tries === 1) throw new Error('thrown');
    return tries;
  });
  assert.throws(() => sync.get(), /thrown/);
  assert.equal(sync.get(), 2);
  assert.equal(sync.get(), 2);

  const seen: string[] = [];
  const byKey = new LazyMap(
    async (k: { a: string; b: number }) => (seen.push(`${k.a}${k.b}`), `${k.a}${k.b}`),
    (k) => `${k.a}:${k.b}`,
  );
  assert.equal(await byKey.get({ a: 'x', b: 1 }), 'x1');
  assert.equal(await byKey.get({ a: 'x', b: 1 }), 'x1');
  assert.equal(await byKey.get({ a: 'x', b: 2 }), 'x2');
  assert.deepEqual(seen, ['x1', 'x2']);
});

test('shared(ctx) belongs to the current keys: a manifest read under one key is not served under another', async () => {
  const root = tempDir('shared');
  const ctx = createContext(demoConfig(path.join(root, 'input'), root));
  assert.throws(() => shared(ctx), /artifact keys are not resolved yet/);
  const writeManifest = (key: string, total: number) => {
    const dir = path.join(root, 'work', 'manifest', key);
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify({ total, parts: [{ number: 0, rows: total, offset: 0 }] }));
  };

  ctx.keys = { manifest: 'a' };
  await assert.rejects(shared(ctx).manifest(), 'not written yet');
  writeManifest('a', 5);
  assert.equal((await shared(ctx).manifest()).total, 5, 'a failed read is tried again');
  writeManifest('a', 6);
  assert.equal((await shared(ctx).manifest()).total, 5, 'read once per keys');
  const copy = { ...ctx };
  assert.equal(shared(copy), shared(ctx), 'a copy of the context shares its resources');

  writeManifest('b', 9);
  ctx.keys = { manifest: 'b' };
  assert.equal((await shared(ctx).manifest()).total, 9, 'new keys, new resources');
  assert.equal(ctx.layout.keys, ctx.keys);

  // A load under the old keys still in flight when they change reads the old keys' artifact.
  ctx.keys = { manifest: 'a' };
  const old = shared(ctx);
  const loading = old.manifest();
  ctx.keys = { manifest: 'b' };
  assert.notEqual(shared(ctx), old);
  assert.equal((await loading).total, 6);
  assert.equal((await shared(ctx).manifest()).total, 9);
});

test('unit threads share the process encoder threads: one session per model, the same vectors as a session of their own', async () => {
  const root = tempDir('shared-encoders');
  const config = demoConfig(root, root);
  const r = await resolveEncoders(config, createContext(config).cacheDir);
  const texts = ['a red apple on a table', 'two cats', ''];
  const before = EncoderThread.started;
  const unit = () =>
    new Promise<{ data: Float32Array; dim: number; startedHere: number }>((resolve, reject) => {
      const { port } = encoderBroker();
      const w = new Worker(new URL('./encoder-thread-user.mjs', import.meta.url), {
        workerData: { encoderBroker: port, spec: r.caption, settings: r.settings, texts },
        transferList: [port],
      });
      w.once('message', (m) => void w.terminate().then(() => resolve(m)));
      w.once('error', reject);
    });
  const [a, b] = await Promise.all([unit(), unit()]);
  assert.equal(EncoderThread.started - before, 1, 'the two unit threads got one encoder thread, started by this (the main) thread');
  assert.deepEqual([a.startedHere, b.startedHere], [0, 0], 'no unit thread started one of its own');
  const own = await (await OnnxEncoder.open(r.caption, r.settings)).encodeTexts(texts);
  assert.deepEqual(Buffer.from(a.data.buffer), Buffer.from(own.data.buffer));
  assert.deepEqual(Buffer.from(b.data.buffer), Buffer.from(own.data.buffer));
  assert.equal(a.dim, own.dim);
});
