// Exit codes mean something, and summary.json says the same as the files: each outcome is made to
// happen and the real CLI is run as a child process.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { cp, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { demoConfigObject, duckdb, runCli, sampleSlice, tarOf, tempDir, writeConfigFile } from './helpers.ts';

const summaryOf = (root: string) => JSON.parse(readFileSync(path.join(root, 'output', 'summary.json'), 'utf8'));

/** The slice plus one shard holding a corrupt image, so one item is ledgered at catalog. */
async function corpusWithOneBadImage(): Promise<string> {
  const dir = path.join(tempDir('outcome-corpus'), 'corpus');
  await cp(await sampleSlice(), dir, { recursive: true });
  await writeFile(
    path.join(dir, '00009.tar'),
    (
      await tarOf([
        ['900000001.png', Buffer.from('not an image')],
        ['900000001.txt', Buffer.from('a caption')],
      ])
    ).bytes,
  );
  return dir;
}

test('exit 0: complete and within run.max_failure_share; exit 3: over it', async () => {
  const corpus = await corpusWithOneBadImage();
  const root = tempDir('outcome-ok');
  const ok = await runCli(['run', '--config', writeConfigFile(root, demoConfigObject(corpus, root))]);
  assert.equal(ok.code, 0, ok.stderr);
  const s = summaryOf(root);
  assert.equal(s.outcome.exit_code, 0);
  assert.equal(s.outcome.complete, true);
  assert.ok(s.outcome.failure_share.catalog > 0 && s.outcome.failure_share.catalog <= 0.05, JSON.stringify(s.outcome));
  const rows = await duckdb(`select count(*) n from '${path.join(root, 'output', 'triples', '*.parquet')}'`);
  assert.equal(Number(rows[0].n), s.triples, 'the summary agrees with the files');
  assert.match(ok.stdout, /outcome\s+complete: \d+ triples \(exit 0\)/);

  // The same corpus, with no failures allowed: complete, but over the share.
  const strict = tempDir('outcome-strict');
  const obj = demoConfigObject(corpus, strict, { run: { name: 'test', seed: 7, max_failure_share: 0 } });
  const over = await runCli(['run', '--config', writeConfigFile(strict, obj)]);
  assert.equal(over.code, 3, over.stderr);
  assert.equal(summaryOf(strict).outcome.exit_code, 3);
  assert.match(summaryOf(strict).outcome.message, /over run\.max_failure_share \(0\).*catalog/);
});

test('exit 3: complete with no triples', async () => {
  const root = tempDir('outcome-none');
  const obj = demoConfigObject(await sampleSlice(), root, { mine: { band: [0.9999, 0.99999] } });
  const r = await runCli(['run', '--config', writeConfigFile(root, obj)]);
  assert.equal(r.code, 3, r.stderr);
  const s = summaryOf(root);
  assert.equal(s.triples, 0);
  assert.deepEqual([s.outcome.exit_code, s.outcome.complete], [3, true]);
  assert.match(s.outcome.message, /no triples/);
});

test('exit 2: bad config, unknown option, no arguments; --help on every command exits 0', async () => {
  const root = tempDir('outcome-usage');
  const bad = await runCli(['run', '--config', writeConfigFile(root, { ...demoConfigObject(await sampleSlice(), root), mine: { kk: 3 } })]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /mine/);
  assert.equal((await runCli(['run', '--bogus'])).code, 2);
  const none = await runCli([]);
  assert.equal(none.code, 2);
  assert.match(none.stderr, /megapairs <command>/);
  for (const command of ['run', 'worker', 'status', 'retry-failed', 'export', 'sample', 'models', 'schema']) {
    const help = await runCli([command, '--help']);
    assert.equal(help.code, 0, command);
    assert.match(help.stdout, new RegExp(`^megapairs ${command}`), command);
  }
  assert.equal(existsSync(path.join(root, 'work')), false, 'nothing ran');
});
