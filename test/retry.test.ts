// A tar cut on shared storage after it was catalogued is the environment's fault, not the images':
// the run fails the unit and loses nothing, and once the tar is whole again (its bytes and mtime)
// `megapairs retry-failed` recovers every item. The real CLI runs as a child process.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { cp, mkdir, readFile, rm, stat, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { parseConfig } from '../src/config/load.ts';
import { readLedger } from '../src/ledger/ledger.ts';
import { pipelineStages } from '../src/pipeline.ts';
import { createContext } from '../src/runner/context.ts';
import { runLocal } from '../src/runner/local.ts';
import { prepareRetry } from '../src/runner/retry-local.ts';
import { ProgressReporter } from '../src/runner/progress.ts';
import { resolveRun } from '../src/provenance/resolve-run.ts';
import type { StageContext } from '../src/core/stage.ts';
import { demoConfigObject, runCli, sampleSlice, tempDir, writeConfigFile } from './helpers.ts';

/** A context under the config's keys, to read its ledger. */
async function resolved(obj: Record<string, unknown>): Promise<StageContext> {
  const ctx = createContext(parseConfig(obj));
  await resolveRun(ctx);
  return ctx;
}

test('a tar cut after catalog fails the unit; restored, retry-failed recovers every item', async () => {
  const corpus = path.join(tempDir('retry-corpus'), 'corpus');
  await cp(await sampleSlice(), corpus, { recursive: true });
  const root = tempDir('retry');
  const obj = demoConfigObject(corpus, root);
  const file = writeConfigFile(root, obj);
  const ctx = createContext(parseConfig(obj));
  const progress = new ProgressReporter(process.stderr, true);
  // One run: its keys (the corpus's identity among them) are fixed when it starts.
  const resolved = await resolveRun(ctx, { record: true });
  await runLocal(ctx, { progress, stages: pipelineStages().slice(0, 2), resolved }); // catalog, manifest

  const tar = path.join(corpus, '00001.tar');
  const whole = await readFile(tar);
  const { atime, mtimeMs } = await stat(tar);
  await writeFile(tar, whole.subarray(0, Math.floor(whole.length * 0.6)));
  await assert.rejects(
    runLocal(ctx, { progress, stages: pipelineStages().slice(2), resolved }),
    /embed part-00001 failed: .*00001\.tar: image \d+ \(\d+ bytes at \d+, as catalogued\) cannot be read: .*00001\.tar changed: its version is \S+, not \S+ as recorded/,
  );
  let ledger = await readLedger(ctx);
  assert.deepEqual(
    ledger.map((f) => [f.stage, f.unit, f.reason, f.retryable]),
    [['embed', 'part-00001', 'unit_failed', true]],
    'the unit failed, and no image was recorded as lost',
  );

  // Restored as a copy that keeps its mtime (rsync -a, cp -p) restores it: the same corpus, the same keys.
  await writeFile(tar, whole);
  await utimes(tar, atime, mtimeMs / 1000); // seconds with the fraction: a Date would round to the ms
  const retried = await runCli(['retry-failed', '--config', file]);
  assert.equal(retried.code, 0, retried.stderr);
  assert.match(retried.stdout, /retrying 1 unit\(s\): embed part-00001/);
  ledger = await readLedger(ctx);
  assert.deepEqual(ledger, [], 'the unit failure is cleared');
  const after = JSON.parse(readFileSync(path.join(root, 'output', 'summary.json'), 'utf8'));
  assert.equal(after.images.catalogued, 150);
  assert.equal(after.embeddings.visual_semantic, 150, 'every item recovered');
  assert.equal(after.outcome.exit_code, 0);
});

test('a tar that ends early at catalog is retryable; restored, it is another identity of its shard and the run makes what a clean run makes', async () => {
  const corpus = path.join(tempDir('retry-cut-corpus'), 'corpus');
  await cp(await sampleSlice(), corpus, { recursive: true });
  const tar = path.join(corpus, '00001.tar');
  const whole = await readFile(tar);
  await writeFile(tar, whole.subarray(0, Math.floor(whole.length * 0.6)));
  const root = tempDir('retry-cut');
  const obj = demoConfigObject(corpus, root);
  const file = writeConfigFile(root, obj);

  const cut = await runCli(['run', '--config', file]);
  assert.equal(cut.code, 3, cut.stderr); // complete, but a fifth of a shard's items are in the ledger
  const summary = JSON.parse(readFileSync(path.join(root, 'output', 'summary.json'), 'utf8'));
  assert.match(summary.outcome.message, /over run\.max_failure_share .* catalog .*ledger entries may pass on another try \(megapairs retry-failed\)/);
  const ledger = await readLedger(await resolved(obj));
  const tarFault = ledger.find((f) => f.reason === 'corrupt_tar');
  assert.equal(tarFault?.retryable, true);
  assert.match(tarFault!.message, /truncated tar/);

  // Restored, the tar has another size and mtime: another identity of shard 1, so other keys for
  // its catalog and embeddings parts (the other parts are reused) and from the manifest on. Nothing
  // failed under them; the run makes everything from the restored shard.
  await writeFile(tar, whole);
  const retried = await runCli(['retry-failed', '--config', file]);
  assert.equal(retried.code, 0, retried.stderr);
  assert.match(retried.stdout, /no failed or retryable units; running to make sure the run is complete/);
  assert.match(retried.stdout, /catalog +partly reused +part-00001 tar\.size: \d+ -> \d+/);
  assert.deepEqual(await readLedger(await resolved(obj)), []);
  const after = JSON.parse(readFileSync(path.join(root, 'output', 'summary.json'), 'utf8'));
  assert.deepEqual([after.images.catalogued, after.embeddings.caption], [150, 150], 'every item recovered');

  // What was derived from the cut shard (manifest, embeddings, every index shard, pairs,
  // annotations, triples) was made again: the product is a clean run's, byte for byte.
  const cleanRoot = tempDir('retry-clean');
  const clean = await runCli(['run', '--config', writeConfigFile(cleanRoot, demoConfigObject(await sampleSlice(), cleanRoot))]);
  assert.equal(clean.code, 0, clean.stderr);
  const jsonl = (r: string) => readFileSync(path.join(r, 'output', 'megapairs.jsonl'), 'utf8');
  assert.equal(jsonl(root), jsonl(cleanRoot));
});

test('retry-failed that cannot read the work storage fails, rather than saying it forgot nothing', async () => {
  const root = tempDir('retry-unreadable');
  const config = parseConfig(demoConfigObject(await sampleSlice(), root, { input: { path: await sampleSlice(), max_shards: 1 } }));
  const ctx = createContext(config);
  await runLocal(ctx, { progress: new ProgressReporter(process.stderr, true), stages: pipelineStages().slice(0, 3) });
  // The manifest unreadable (a directory where the file is: EISDIR, not a missing artifact).
  const manifest = path.join(root, 'work', ctx.layout.catalogManifest());
  await rm(manifest);
  await mkdir(manifest);
  await assert.rejects(prepareRetry(createContext(config)), /EISDIR/); // a process of its own, as `megapairs retry-failed` is
  await rm(manifest, { recursive: true });
  const stages = await prepareRetry(createContext(config)); // missing: the run has not reached the stages after catalog
  assert.deepEqual(stages.forgotten, []);
});
