// The production build: `tsc -p tsconfig.build.json` emits dist/, and the compiled CLI and workers
// run with plain node, loading no dev dependency (tsx, openmoji, ...) and no demo-only code (the
// built-in encoders, the ONNX writer, the sample builder), as after `npm ci --omit=dev`. The run
// uses model files given by path, as a config with real models does, on a local and a
// distributed (Redis) run; a forbidden import is recorded by test/production-imports.mjs.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { BUILTIN_IMAGE_CONFIG, ensureBuiltinModels } from '../src/encoders/builtin.ts';
import { demoConfigObject, readJsonl, repoRoot, sampleSlice, tempDir, writeConfigFile } from './helpers.ts';

const run = promisify(execFile);
// Inside the repository, so that the compiled code finds node_modules as an installed package would.
const pkg = path.join(repoRoot, '.megapairs', `build-test-${process.pid}`);
const forbiddenLog = path.join(pkg, 'forbidden.log');
const hook = path.join(repoRoot, 'test', 'production-imports.mjs');
const env = { ...process.env, MEGAPAIRS_FORBIDDEN_LOG: forbiddenLog };
const redisPrefix = `mptest-build-${process.pid}-${Date.now()}`;

before(async () => {
  await run(process.execPath, [
    path.join(repoRoot, 'node_modules/typescript/bin/tsc'),
    '-p',
    path.join(repoRoot, 'tsconfig.build.json'),
    '--outDir',
    path.join(pkg, 'dist'),
  ]);
  // The package's layout without src/: bin/megapairs.js beside dist/, and native/'s addon as npm ci built it.
  mkdirSync(path.join(pkg, 'bin'));
  cpSync(path.join(repoRoot, 'bin', 'megapairs.js'), path.join(pkg, 'bin', 'megapairs.js'));
  const addon = path.join('native', 'build', 'Release', 'preprocess.node');
  cpSync(path.join(repoRoot, addon), path.join(pkg, addon));
});

after(async () => {
  rmSync(pkg, { recursive: true, force: true });
  const redis = new Redis('redis://127.0.0.1:6379', { maxRetriesPerRequest: 1 });
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${redisPrefix}:*`, 'COUNT', 1000);
    if (keys.length) await redis.del(...keys);
    cursor = next;
  } while (cursor !== '0');
  redis.disconnect();
});

/** Runs a compiled entry point with plain node under the production-imports hook. */
function compiled(entry: string, args: string[]) {
  return run(process.execPath, ['--import', hook, path.join(pkg, entry), ...args], { env, maxBuffer: 64 << 20 });
}

const forbiddenImports = () => (existsSync(forbiddenLog) ? readFileSync(forbiddenLog, 'utf8') : '');

/** A config whose encoders are model files given by path (the built-ins written out), as with real models. */
async function modelFileConfig(name: string, extra: Record<string, unknown> = {}) {
  const root = tempDir(`build-${name}`);
  const models = await ensureBuiltinModels(path.join(root, 'models'));
  const image = (model: string) => ({ model, ...BUILTIN_IMAGE_CONFIG });
  const obj = demoConfigObject(await sampleSlice(), root, {
    encoders: { visual_semantic: image(models.shape), visual_pattern: image(models.colour), caption: { model: models.caption, tokenizer: models.tokenizer } },
    ...extra,
  });
  return { root, file: writeConfigFile(root, obj) };
}

test('the build emits the CLI, the workers and the unit thread as JavaScript', () => {
  for (const file of ['src/cli/main.js', 'workers/all.js', 'workers/gpu.js', 'workers/cpu.js', 'workers/annotate.js', 'src/runner/threads/unit-thread.js']) {
    assert.ok(existsSync(path.join(pkg, 'dist', file)), `dist/${file} is missing`);
  }
  const deps = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')).dependencies as Record<string, string>;
  assert.ok(!('tsx' in deps) && !('openmoji' in deps), 'tsx and openmoji must be dev dependencies');
});

test('the compiled CLI answers --help and schema without tsx', async () => {
  const help = await compiled('bin/megapairs.js', ['--help']);
  assert.match(help.stdout, /megapairs <command> \[options\]/);
  const schema = await compiled('bin/megapairs.js', ['schema']);
  assert.deepEqual(JSON.parse(schema.stdout), JSON.parse(readFileSync(path.join(repoRoot, 'configs', 'megapairs.schema.json'), 'utf8')));
  assert.equal(forbiddenImports(), '');
});

test('the compiled CLI runs a config with model files end to end, on the production path', { timeout: 300_000 }, async () => {
  const { root, file } = await modelFileConfig('local');
  const { stdout, stderr } = await compiled('bin/megapairs.js', ['run', '--config', file]);
  assert.match(stdout, /triples +\d+/);
  assert.match(stderr, /images are resized by the native resampler/, 'dist/ finds the addon under the package root');
  assert.equal(forbiddenImports(), '');
  const rows = readJsonl(path.join(root, 'output', 'megapairs.jsonl'));
  assert.ok(rows.length > 0);
  const summary = JSON.parse(readFileSync(path.join(root, 'output', 'summary.json'), 'utf8'));
  assert.equal(summary.triples, rows.length);
});

test('a compiled worker (dist/workers/all.js) and the compiled follower finish a distributed run', { timeout: 300_000 }, async () => {
  const { root, file } = await modelFileConfig('distributed', { runner: { kind: 'distributed', concurrency: 1 }, redis: { prefix: redisPrefix } });
  const worker = spawn(process.execPath, ['--import', hook, path.join(pkg, 'dist/workers/all.js'), '--config', file, '--grace', '0'], {
    env,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<number | null>((resolve) => worker.on('exit', resolve));
  try {
    let out = '';
    await new Promise<void>((resolve, reject) => {
      worker.stdout.on('data', (d) => {
        out += d;
        // Started before `megapairs run`, it waits for the run to be published.
        if (/ready: |waiting for `megapairs run`/.test(out)) resolve();
      });
      void exited.then(() => reject(new Error(`the worker exited before it was ready:\n${out}`)));
    });
    const { stdout } = await compiled('bin/megapairs.js', ['run', '--config', file]);
    assert.match(stdout, /triples +\d+/);
    assert.ok(readJsonl(path.join(root, 'output', 'megapairs.jsonl')).length > 0);
  } finally {
    worker.kill('SIGTERM');
  }
  assert.equal(await exited, 0);
  assert.equal(forbiddenImports(), '');
});
