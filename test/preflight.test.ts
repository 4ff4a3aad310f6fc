// Preflight finds what would fail a run before any unit runs, names the config key with what it
// found and what it expected, and lists every problem at once; the CLI exits 2 on any.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { parseConfig } from '../src/config/load.ts';
import { explainWebgpuFailure } from '../src/encoders/webgpu-needs.ts';
import { preflightProblems } from '../src/preflight/preflight.ts';
import { createContext } from '../src/runner/context.ts';
import { demoConfigObject, runCli, sampleSlice, tempDir, writeConfigFile } from './helpers.ts';
import { startS3Server, type S3TestServer } from './s3-server.ts';
import { Redis } from 'ioredis';

let server: S3TestServer;
before(async () => {
  server = await startS3Server(['preflight']);
});
after(() => server.stop());

const problemsFor = (obj: Record<string, unknown>) => preflightProblems(createContext(parseConfig(obj)));

test('a good config has no problems, and the probes leave nothing behind', async () => {
  const root = tempDir('pf-ok');
  assert.deepEqual(await problemsFor(demoConfigObject(await sampleSlice(), root)), []);
  const s3 = { endpoint: server.endpoint, force_path_style: true, region: 'us-east-1', max_attempts: 2 };
  assert.deepEqual(await problemsFor({ ...demoConfigObject(await sampleSlice(), root), work: 's3://preflight/work', s3 }), []);
});

test('every kind of storage and file problem, each naming its key, all at once', async () => {
  const root = tempDir('pf-bad');
  const blocker = path.join(root, 'a-file');
  await writeFile(blocker, 'work cannot be a folder under a file');
  const empty = path.join(root, 'empty-input');
  await mkdir(empty);
  await writeFile(path.join(empty, 'README.txt'), 'no shards here');
  const obj = {
    ...demoConfigObject(empty, root),
    work: path.join(blocker, 'work'),
    output: 's3://no-such-bucket/out',
    s3: { endpoint: server.endpoint, force_path_style: true, region: 'us-east-1', max_attempts: 2 },
    encoders: {
      visual_semantic: { model: path.join(root, 'missing', 'visual.onnx') },
      visual_pattern: { model: root },
      caption: { model: 'builtin:caption', tokenizer: path.join(root, 'missing', 'tokenizer.json') },
    },
  };
  const problems = await problemsFor(obj);
  const byKey = new Map(problems.map((p) => [p.key, p]));
  assert.deepEqual([...byKey.keys()].sort(), [
    'encoders.caption.tokenizer',
    'encoders.visual_pattern.model',
    'encoders.visual_semantic.model',
    'input.path',
    'output',
    'work',
  ]);
  assert.match(byKey.get('input.path')!.found, /no NNNNN\.tar shards \(1 other object\)/);
  assert.match(byKey.get('work')!.found, /write of .*a-file\/work\/\.megapairs-preflight-.* failed: .*ENOTDIR/);
  assert.match(byKey.get('output')!.found, /s3:\/\/no-such-bucket\/out\/.*NoSuchBucket|bucket/i);
  assert.match(byKey.get('encoders.visual_semantic.model')!.found, /visual\.onnx: .*ENOENT/);
  assert.match(byKey.get('encoders.visual_semantic.model')!.expected, /readable ONNX model file/);
  assert.match(byKey.get('encoders.visual_pattern.model')!.found, /is not a file/);
  assert.match(byKey.get('encoders.caption.tokenizer')!.found, /tokenizer\.json: .*ENOENT/);

  const missingInput = await problemsFor({ ...demoConfigObject(path.join(root, 'nowhere'), root) });
  assert.equal(missingInput.length, 1);
  assert.equal(missingInput[0].key, 'input.path');
});

test('the CLI: a missing ONNX model exits 2 before catalog, naming the key; --no-preflight still finds it before catalog', async () => {
  const root = tempDir('pf-cli');
  const model = path.join(root, 'models', 'eva-visual.onnx');
  const obj = { ...demoConfigObject(await sampleSlice(), root), encoders: { visual_semantic: { model } } };
  const file = writeConfigFile(root, obj);
  const r = await runCli(['run', '--config', file]);
  assert.equal(r.code, 2, r.stderr);
  assert.match(
    r.stderr,
    /preflight found 1 problem \(nothing was run\):\n {2}encoders\.visual_semantic\.model: found .*eva-visual\.onnx: .*ENOENT.*; expected a readable ONNX model file/,
  );
  assert.equal(existsSync(path.join(root, 'work', 'catalog')), false, 'catalog never ran');

  // Without preflight, the model's content digest (part of the embeddings' key) is taken first.
  const late = await runCli(['run', '--config', file, '--no-preflight']);
  assert.equal(late.code, 1, late.stderr);
  assert.match(late.stderr, /encoders\.visual_semantic\.model: cannot read .*eva-visual\.onnx \(ENOENT\)/);
  assert.equal(existsSync(path.join(root, 'work', 'catalog')), false, 'catalog never ran');
});

test('--gpu N: a worker whose provider cannot load there exits 2 at start (before Redis), naming the provider, the flag and the reason; so does run', async () => {
  const root = tempDir('pf-gpu');
  // No Redis listens on port 1: the worker must fail on its models before it connects.
  const obj = { ...demoConfigObject(await sampleSlice(), root), encoders: { execution_providers: ['cuda', 'cpu'] }, redis: { url: 'redis://127.0.0.1:1' } };
  const file = writeConfigFile(root, obj);
  // On a CPU-only machine the CUDA provider does not load; on a GPU machine device 3 is unlikely.
  const failed =
    /encoders\.visual_semantic\.model: found cannot load ONNX model .* with execution providers \[cuda:3, cpu\] \(device 3 from (--gpu 3|MEGAPAIRS_GPU=3)\): \S.*; expected an ONNX model that loads with execution providers from encoders\.execution_providers on device 3/;
  const [worker, fromEnv, run] = await Promise.all([
    runCli(['worker', 'gpu', '--config', file, '--gpu', '3']),
    runCli(['worker', 'all', '--config', file], { MEGAPAIRS_GPU: '3' }),
    runCli(['run', '--config', file, '--gpu', '3']),
  ]);
  assert.equal(worker.code, 2, worker.stderr);
  assert.match(worker.stderr, failed);
  assert.match(worker.stderr, /\(device 3 from --gpu 3\)/);
  assert.doesNotMatch(worker.stdout, /ready|waiting/);
  assert.equal(fromEnv.code, 2, fromEnv.stderr);
  assert.match(fromEnv.stderr, /\(device 3 from MEGAPAIRS_GPU=3\)/);
  assert.equal(run.code, 2, run.stderr);
  assert.match(run.stderr, /preflight found 3 problems \(nothing was run\)/);
  assert.match(run.stderr, failed);
  assert.equal(existsSync(path.join(root, 'work', 'catalog')), false, 'catalog never ran');

  // A device in the config and on the command line: a usage error naming both.
  const twice = writeConfigFile(root, { ...obj, encoders: { execution_providers: ['cuda:1', 'cpu'] } });
  const [both, bad] = await Promise.all([runCli(['worker', 'gpu', '--config', twice, '--gpu', '3']), runCli(['run', '--config', file, '--gpu', 'x'])]);
  assert.equal(both.code, 2, both.stderr);
  assert.match(both.stderr, /encoders\.execution_providers names the device "cuda:1" and --gpu 3 names device 3/);
  assert.equal(bad.code, 2, bad.stderr);
  assert.match(bad.stderr, /--gpu must be a device number \(0, 1, \.\.\.\), not "x"/);
});

test('distributed: preflight runs before anything is enqueued', async () => {
  const root = tempDir('pf-dist');
  const prefix = `mptest-preflight-${process.pid}-${Date.now()}`;
  const obj = {
    ...demoConfigObject(await sampleSlice(), root),
    encoders: { caption: { model: 'builtin:caption', tokenizer: path.join(root, 'tokenizer.json') } },
    runner: { kind: 'distributed' },
    redis: { url: 'redis://127.0.0.1:6379', prefix },
  };
  const r = await runCli(['run', '--config', writeConfigFile(root, obj)]);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /encoders\.caption\.tokenizer: found .*tokenizer\.json: .*ENOENT/);
  const redis = new Redis('redis://127.0.0.1:6379');
  try {
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      keys.push(...batch);
      cursor = next;
    } while (cursor !== '0');
    assert.deepEqual(keys, [], 'nothing was enqueued');
  } finally {
    redis.disconnect();
  }
});

test('webgpu: a missing Vulkan loader or driver is named in plain words; --gpu N is refused, saying how to pick the GPU', async () => {
  const root = tempDir('pf-webgpu');
  const obj = { ...demoConfigObject(await sampleSlice(), root), encoders: { execution_providers: ['webgpu'] } };
  const file = writeConfigFile(root, obj);
  const [run, gpu, indexed] = await Promise.all([
    runCli(['run', '--config', file]),
    runCli(['run', '--config', file, '--gpu', '1']),
    runCli(['run', '--config', writeConfigFile(tempDir('pf-webgpu-1'), { ...obj, encoders: { execution_providers: ['webgpu:1'] } })]),
  ]);
  // This machine has no GPU: session creation fails, and preflight says what the node lacks.
  assert.equal(run.code, 2, run.stderr);
  assert.match(
    run.stderr,
    /encoders\.visual_semantic\.model: found cannot load ONNX model .* with execution providers \[webgpu\]: webgpu found no GPU: (the Vulkan loader libvulkan\.so\.1 is not installed \(Debian\/Ubuntu: apt-get install libvulkan1\)|no Vulkan driver is installed|the Vulkan driver found no usable GPU)/,
  );
  assert.equal(gpu.code, 2, gpu.stderr);
  assert.match(gpu.stderr, /--gpu 1 names a device, but the webgpu provider cannot be given one .*NVIDIA_VISIBLE_DEVICES=N/);
  assert.equal(indexed.code, 2, indexed.stderr);
  assert.match(indexed.stderr, /encoders\.execution_providers: "webgpu:1" names a device, but the webgpu provider cannot be given one/);

  // Each missing part in its own words: no loader; a loader and no driver; both (then the GPU itself).
  const lib = tempDir('pf-webgpu-lib');
  const icd = tempDir('pf-webgpu-icd');
  const none = { lib: [path.join(root, 'none')], icd: [icd] };
  assert.match(explainWebgpuFailure({}, none), /libvulkan\.so\.1 is not installed \(Debian\/Ubuntu: apt-get install libvulkan1\)/);
  await writeFile(path.join(lib, 'libvulkan.so.1'), '');
  assert.match(
    explainWebgpuFailure({ LD_LIBRARY_PATH: lib }, none),
    /no Vulkan driver is installed: .*libvulkan\.so\.1 found no ICD manifest .*NVIDIA_DRIVER_CAPABILITIES must include "graphics"/,
  );
  await writeFile(path.join(icd, 'nvidia_icd.json'), '{}');
  assert.match(explainWebgpuFailure({ LD_LIBRARY_PATH: lib }, none), /the Vulkan driver found no usable GPU \(loader .*, drivers .*nvidia_icd\.json\)/);
});
