// Usage errors exit 2 everywhere, with a message naming what is wrong: a worker kind that does not
// exist, a bad count, and `export` before any run (which names the config and says to run it first).
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { cli } from './distributed-harness.ts';
import { demoConfigObject, sampleSlice, tempDir, writeConfigFile } from './helpers.ts';

async function exitsTwo(args: string[], message: RegExp): Promise<void> {
  const p = cli(args);
  assert.equal((await p.exited).code, 2, args.join(' '));
  assert.match(p.err(), message);
}

test('usage errors exit 2: an unknown worker kind, a bad count, export before any run', { timeout: 120_000 }, async () => {
  const root = tempDir('usage');
  const file = writeConfigFile(root, demoConfigObject(await sampleSlice(), root));
  await exitsTwo(['worker', 'bogus', '--config', file], /unknown worker kind "bogus"/);
  await exitsTwo(['sample', '--limit', 'many', '--out', path.join(root, 's')], /--limit must be a positive whole number, not "many"/);
  await exitsTwo(
    ['export', '--config', file, '--to', path.join(root, 'export')],
    new RegExp(`config ${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} has not been run.*megapairs run --config`),
  );
  assert.ok(!existsSync(path.join(root, 'export')) && !existsSync(path.join(root, 'work')), 'export wrote nothing');
});
