// Each kind of bad input is made to happen; the run finishes, and every item is either carried
// forward or in the ledger with the stage, the reason and where it was.
import assert from 'node:assert/strict';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import sharp from 'sharp';
import { readLedger } from '../src/ledger/ledger.ts';
import { pipelineStages } from '../src/pipeline.ts';
import { resolveRun } from '../src/provenance/resolve-run.ts';
import { createContext } from '../src/runner/context.ts';
import { runLocal } from '../src/runner/local.ts';
import { ProgressReporter } from '../src/runner/progress.ts';
import { summarize } from '../src/report/summary.ts';
import { demoConfig, duckdb, membersOf, sliceSamples, tarOf, tempDir } from './helpers.ts';

const quiet = new ProgressReporter(process.stderr, true);

/** Writes a tar; returns its bytes and each member's header offset. */
async function writeShard(file: string, members: Array<[string, Buffer]>): Promise<{ bytes: Buffer; headers: Map<string, number> }> {
  const tar = await tarOf(members);
  await writeFile(file, tar.bytes);
  return tar;
}

test('bad input ends in the ledger and the run goes on', async () => {
  const good = await sliceSamples(['00000.tar']);
  const corpus = path.join(tempDir('bad'), 'corpus');
  await mkdir(corpus, { recursive: true });
  const big = await sharp({ create: { width: 500, height: 400, channels: 3, background: '#3366aa' } })
    .png()
    .toBuffer();
  const s0 = good[0];

  // Shard 0: good samples and one of each bad item.
  const members: Array<[string, Buffer]> = [];
  members.push(...membersOf(good.slice(0, 30)));
  members.push(['900000001.png', Buffer.from('this is not an image at all')], ['900000001.txt', s0.txt]);
  members.push(['900000002.png', big], ['900000002.txt', Buffer.from('a large blue rectangle')]);
  members.push(['900000003.png', s0.png], ['900000003.txt', Buffer.from('   \n ')]);
  members.push(['900000004.png', s0.png], ['900000004.txt', Buffer.from([0xff, 0xfe, 0x41, 0x00])]);
  members.push(['900000005.txt', Buffer.from('a caption without its image')], ['900000005.json', Buffer.from('{}')]);
  members.push(['900000006.png', s0.png.subarray(0, Math.floor(s0.png.length / 2))], ['900000006.txt', Buffer.from('half an image')]);
  const jpeg = await sharp(s0.png).flatten({ background: '#ffffff' }).jpeg().toBuffer();
  members.push(['900000007.jpg', jpeg.subarray(0, Math.floor(jpeg.length / 2))], ['900000007.txt', Buffer.from('half a JPEG')]);
  await writeShard(path.join(corpus, '00000.tar'), members);

  // Shard 1: whole, but its file goes missing after cataloguing (storage, not the data: the unit fails).
  const shard1 = await writeShard(path.join(corpus, '00001.tar'), membersOf(good.slice(30, 40)));

  // Shard 2: cut in the middle of a member.
  const shard2 = await writeShard(path.join(corpus, '00002.tar'), membersOf(good.slice(40, 50)));
  const cut = Math.floor(shard2.bytes.length * 0.55);
  await writeFile(path.join(corpus, '00002.tar'), shard2.bytes.subarray(0, cut));
  // Samples whose first member starts before the cut are seen; each must be catalogued or ledgered.
  const seenInShard2 = good.slice(40, 50).filter(({ key }) => shard2.headers.get(`${key}.png`)! < cut).length;

  const root = tempDir('bad-run');
  const ctx = createContext(demoConfig(corpus, root, { input: { path: corpus, max_pixels: 100_000 } }));
  const stages = pipelineStages();
  // One run whose input loses a tar after the catalog: its keys are fixed when it starts.
  const resolved = await resolveRun(ctx, { record: true });
  await runLocal(ctx, { progress: quiet, stages: stages.slice(0, 2), resolved }); // catalog and manifest
  await rm(path.join(corpus, '00001.tar'));
  await assert.rejects(runLocal(ctx, { progress: quiet, stages: stages.slice(2), resolved }), /embed part-00001 failed: .*00001\.tar: image \d+ .*not found/);
  const unitFailure = (await readLedger(ctx)).find((f) => f.reason === 'unit_failed');
  assert.equal(unitFailure?.unit, 'part-00001');
  assert.equal(unitFailure?.retryable, true);
  // Put back (a new file, so a new version: the rerun catalogs it again), the shard's images all
  // embed, and the unit's failure is not in the rerun's ledger.
  await writeFile(path.join(corpus, '00001.tar'), shard1.bytes);
  await runLocal(ctx, { progress: quiet, resolved: await resolveRun(ctx, { record: true }) });

  const ledger = await readLedger(ctx);
  assert.ok(!ledger.some((f) => f.reason === 'unit_failed'), 'the unit failure is cleared once the unit passes');
  assert.ok(!ledger.some((f) => f.where.includes('00001.tar')), 'nothing of the restored shard is lost');
  const byItem = new Map(ledger.map((f) => [f.item, f]));
  const expect = (item: string, stage: string, reason: string, where: RegExp) => {
    const f = byItem.get(item);
    assert.ok(f, `${item} is not in the ledger`);
    assert.equal(f.stage, stage, `${item}: stage`);
    assert.equal(f.reason, reason, `${item}: reason`);
    assert.match(f.where, where, `${item}: where`);
    assert.ok(f.message.length > 0);
  };
  expect('900000001', 'catalog', 'corrupt_image', /00000\.tar:900000001\.png/);
  expect('900000002', 'catalog', 'too_many_pixels', /00000\.tar:900000002\.png/);
  assert.match(byItem.get('900000002')!.message, /500x400 is over input\.max_pixels \(100000\)/);
  expect('900000003', 'catalog', 'empty_caption', /00000\.tar/);
  expect('900000004', 'catalog', 'non_text_caption', /00000\.tar/);
  expect('900000005', 'catalog', 'missing_image', /00000\.tar/);
  expect('900000006', 'embed', 'undecodable_image', /00000\.tar:900000006\.png@\d+/);
  expect('900000007', 'embed', 'undecodable_image', /00000\.tar:900000007\.jpg@\d+/);
  // The cause's own words: sharp's (libvips') messages, never "Unknown error".
  assert.match(byItem.get('900000007')!.message, /VipsJpeg: premature end of JPEG image/);
  assert.match(byItem.get('900000006')!.message, /pngload_buffer/);
  assert.ok(ledger.every((f) => !/Unknown error/.test(f.message)));
  // Bad input is final; a tar that ends early may be a copy still under way, so it may be retried.
  assert.deepEqual(
    ledger.filter((f) => f.retryable).map((f) => [f.item, f.reason]),
    [['00002.tar', 'corrupt_tar']],
  );
  const tarFault = ledger.find((f) => f.reason === 'corrupt_tar');
  assert.ok(tarFault, 'the truncated tar is in the ledger');
  assert.match(tarFault.where, /00002\.tar@\d+/);

  // Nothing lost silently: every sample written is catalogued or in the ledger.
  const summary = await summarize(ctx, []);
  const keptFromShard2 = (await duckdb(`select count(*) n from '${ctx.work.uri(ctx.layout.catalogPart(2))}'`))[0].n;
  assert.ok(Number(keptFromShard2) > 0 && Number(keptFromShard2) < 10, 'the members before the cut are kept');
  const catalogRefusals = ledger.filter((f) => f.stage === 'catalog' && f.reason !== 'corrupt_tar').length;
  assert.equal(summary.images.catalogued + catalogRefusals, 30 + 7 + 10 + seenInShard2);
  assert.equal(summary.embeddings.caption, summary.images.catalogued - 2);
  for (const reason of [
    'catalog/corrupt_image',
    'catalog/too_many_pixels',
    'catalog/empty_caption',
    'catalog/non_text_caption',
    'catalog/missing_image',
    'catalog/corrupt_tar',
    'embed/undecodable_image',
  ]) {
    assert.ok(summary.failures[reason] > 0, `summary counts ${reason}`);
  }
  // The run finished: triples exist, and none of them uses a failed image.
  const triples = await duckdb(`select q_img, t_img, hns from '${ctx.output.uri('triples/*.parquet')}'`);
  assert.ok(triples.length > 0);
  const failedImages = new Set(ledger.map((f) => f.item));
  for (const t of triples) {
    for (const img of [t.q_img, t.t_img, ...(t.hns as string[])] as string[]) {
      assert.ok(!failedImages.has(img.split('/')[1].split('.')[0]), `${img} failed but is used`);
    }
  }
});
