// Commands that only look write nothing: `status`, `plan`, `run --dry-run` and `--help` leave the
// work and output folders and Redis as they found them, before any run (nothing is created) and
// after one (no file changes).
import assert from 'node:assert/strict';
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { before, test } from 'node:test';
import { cli, ownPrefix, redisKeys } from './distributed-harness.ts';
import { demoConfigObject, sampleSlice, tempDir, writeConfigFile } from './helpers.ts';

process.env.MEGAPAIRS_CACHE = tempDir('readonly-cache');
let input: string;
before(async () => {
  input = await sampleSlice();
});

/** Every file under the folder with its size and mtime. */
function files(dir: string, out = new Map<string, string>()): Map<string, string> {
  if (!existsSync(dir)) return out;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) files(p, out);
    else out.set(p, `${statSync(p).size} ${statSync(p).mtimeMs}`);
  }
  return out;
}

const LOOKS = [['status'], ['plan', '--sample', '8'], ['run', '--dry-run'], ['run', '--help'], ['status', '--help']];

async function look(file: string, args: string[]): Promise<void> {
  const [command, ...rest] = args;
  const p = cli([command, '--config', file, ...rest]);
  assert.equal((await p.exited).code, 0, `${args.join(' ')}: ${p.err()}`);
}

test('status, plan, --dry-run and --help write nothing: not before a run, not after one', { timeout: 300_000 }, async () => {
  const root = tempDir('readonly');
  const prefix = `mptest-readonly-${process.pid}`;
  ownPrefix(prefix);
  const file = writeConfigFile(root, demoConfigObject(input, root, { redis: { prefix } }));
  for (const args of LOOKS) {
    await look(file, args);
    assert.deepEqual(await redisKeys(`${prefix}:*`), [], `${args.join(' ')} wrote Redis keys`);
    assert.ok(!existsSync(path.join(root, 'work')) && !existsSync(path.join(root, 'output')), `${args.join(' ')} made the run's folders`);
  }

  assert.equal((await cli(['run', '--config', file, '--no-preflight']).exited).code, 0);
  const made = new Map([...files(path.join(root, 'work')), ...files(path.join(root, 'output'))]);
  for (const args of LOOKS) {
    await look(file, args);
    assert.deepEqual(new Map([...files(path.join(root, 'work')), ...files(path.join(root, 'output'))]), made, `${args.join(' ')} changed a file`);
    assert.deepEqual(await redisKeys(`${prefix}:*`), [], `${args.join(' ')} wrote Redis keys`);
  }
});
