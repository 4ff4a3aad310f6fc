// Fuzzes the catalog with mutated shards for a fixed time. From one valid shard (40 demo samples
// with their img2dataset metadata), each case applies 1 to 3 random mutations: bit flips,
// truncations, corrupted header fields, size fields that lie, hostile or garbled member names, pax
// headers (path, size) inserted before a member, changed entry types, duplicated members, dropped
// end-of-archive blocks, a shard moved into a folder whose name holds a backslash or a control
// character. Each mutated shard goes through the catalog stage; every --pipeline-every'th case
// through the whole local pipeline and `megapairs export` (jsonl) instead. Each case asserts:
//   no crash:        the stage (or the run) does not throw, nothing uncaught, the process lives on;
//   nothing escapes: no file appears outside the run's folders (the sandbox around them, with an
//                    empty sentinel folder, is listed after every case; and /, /tmp);
//   nothing silent:  every sample the tar reader yields, and every key the metadata lists, is
//                    catalogued or in the ledger, and no catalogued name is unsafe.
// Prints the cases tried, what they ended in, and any finding with the seed that reproduces it.
// Usage: npx tsx bench/fuzz-shard.ts [--seconds 60] [--seed 1] [--pipeline-every 25]
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { parseArgs } from 'node:util';
import { readParquet } from '../src/artifacts/parquet.ts';
import { catalogSchema, type CatalogRow } from '../src/artifacts/tables.ts';
import { readShardMetadata } from '../src/corpus/shard-metadata.ts';
import { readTarEntries, TarError } from '../src/corpus/tar.ts';
import { listShards, memberByteCaps, readSamples } from '../src/corpus/webdataset.ts';
import { exportDataset } from '../src/export/export-dataset.ts';
import { readLedger } from '../src/ledger/ledger.ts';
import { resolveRun } from '../src/provenance/resolve-run.ts';
import { createContext } from '../src/runner/context.ts';
import { runLocal } from '../src/runner/local.ts';
import { ProgressReporter } from '../src/runner/progress.ts';
import { buildSampleCorpus } from '../src/sample/openmoji.ts';
import { CatalogStage } from '../src/stages/catalog.ts';
import type { StageContext } from '../src/core/stage.ts';
import { openStorage } from '../src/storage/open.ts';
import { printableKey, unsafeKeyProblem } from '../src/storage/safe-key.ts';
import { Rng } from '../src/util/rng.ts';
import { demoConfig, tempDir } from '../test/helpers.ts';
import { paxMember, setChecksum } from '../test/hostile-tar.ts';

const { values } = parseArgs({
  options: { seconds: { type: 'string', default: '60' }, seed: { type: 'string', default: '1' }, 'pipeline-every': { type: 'string', default: '25' } },
});
const seconds = Number(values.seconds);
const seed = Number(values.seed);
const pipelineEvery = Number(values['pipeline-every']);

// ---------------------------------------------------------------------------------------------
// The sandbox: corpus, run folders, export folder and an empty sentinel, all under one parent.

const base = tempDir('fuzz');
const sandbox = path.join(base, 'sandbox');
const corpus = path.join(sandbox, 'corpus');
const token = path.basename(base); // in every hostile name, so an escape anywhere is found by name
await mkdir(path.join(sandbox, 'elsewhere'), { recursive: true });
const built = path.join(base, 'built');
await buildSampleCorpus({ outDir: built, limit: 40, shardSize: 40 });
await mkdir(corpus);
const valid = await readFile(path.join(built, '00000.tar'));
await writeFile(path.join(corpus, '00000.parquet'), await readFile(path.join(built, '00000.parquet')));
const headers: number[] = [];
for await (const e of readTarEntries(Readable.from([valid]), 'valid')) headers.push(e.headerOffset);

/** Every path under the sandbox but the run's own folders, and any path at / or /tmp naming the token. */
function snapshot(): string[] {
  const own = /^(run|export)-\d+$/;
  const out = readdirSync(sandbox, { recursive: true })
    .map(String)
    .filter((p) => !own.test(p.split(path.sep)[0]));
  for (const top of ['/', '/tmp'])
    for (const name of readdirSync(top)) if (name.includes(token) && path.join(top, name) !== base) out.push(path.join(top, name));
  for (const name of ['/elsewhere', '/tmp/elsewhere', '/abs']) if (existsSync(name)) out.push(name);
  return out.sort();
}

// ---------------------------------------------------------------------------------------------
// Mutations

const HEADER_FIELDS: Array<[number, number]> = [
  [0, 100], // name
  [100, 8], // mode
  [124, 12], // size
  [136, 12], // mtime
  [148, 8], // checksum
  [156, 1], // type
  [157, 100], // link name
  [257, 8], // magic, version
  [345, 155], // ustar prefix
];

function hostileName(rng: Rng): string {
  const ext = ['png', 'txt', 'json', 'jpg'][rng.int(0, 3)];
  const stem = `evil-${token}-${rng.int(0, 99)}`;
  switch (rng.int(0, 9)) {
    case 0:
      return `${'../'.repeat(rng.int(1, 8))}elsewhere/${stem}.${ext}`;
    case 1:
      return `/${stem}.${ext}`;
    case 2:
      return `${sandbox}/elsewhere/${stem}.${ext}`;
    case 3:
      return `..\\..\\${stem}.${ext}`;
    case 4:
      return `${stem}\u0001.${ext}`;
    case 5:
      return `${stem}\n.${ext}`;
    case 6:
      return `x/../../${stem}.${ext}`;
    case 7:
      return `./${stem}.${ext}`;
    case 8:
      return `${'a/'.repeat(rng.int(1, 60))}${stem}.${ext}`;
    default:
      return Buffer.from(Array.from({ length: rng.int(1, 100) }, () => rng.int(1, 255))).toString('latin1');
  }
}

const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[rng.int(0, xs.length - 1)];
const maybeFix = (rng: Rng, block: Buffer, p: number) => rng.next() < p && setChecksum(block);

/** The header blocks still in `buf` at the valid shard's offsets (a mutation may have cut the file). */
const headersIn = (buf: Buffer) => headers.filter((h) => h + 512 <= buf.length);

/** The offset of one of those header blocks, at random; undefined when none is left. */
function pickHeader(rng: Rng, buf: Buffer): number | undefined {
  const h = headersIn(buf);
  return h.length ? pick(rng, h) : undefined;
}

type Mutation = (rng: Rng, buf: Buffer) => Buffer;

const mutations: Record<string, Mutation> = {
  bitflips(rng, buf) {
    for (let i = rng.int(1, 16); i > 0; i--) buf[rng.int(0, buf.length - 1)] ^= 1 << rng.int(0, 7);
    return buf;
  },
  truncate(rng, buf) {
    const h = headersIn(buf);
    const at = rng.next() < 0.5 && h.length ? pick(rng, h) + rng.int(-2, 514) : rng.int(0, buf.length);
    return buf.subarray(0, Math.max(0, Math.min(buf.length, at)));
  },
  field(rng, buf) {
    const at = pickHeader(rng, buf);
    if (at === undefined) return buf;
    const block = buf.subarray(at, at + 512);
    const [start, length] = pick(rng, HEADER_FIELDS);
    const fill = rng.int(0, 3);
    for (let i = start; i < start + length; i++) block[i] = fill === 0 ? rng.int(0, 255) : fill === 1 ? 0 : fill === 2 ? 0x30 + rng.int(0, 9) : 0x20;
    maybeFix(rng, block, 0.8);
    return buf;
  },
  sizeLie(rng, buf) {
    const at = pickHeader(rng, buf);
    if (at === undefined) return buf;
    const block = buf.subarray(at, at + 512);
    const lie = rng.int(0, 4);
    if (lie === 3) {
      block[124] = 0x80; // GNU base-256: as large as the field holds
      for (let i = 125; i < 136; i++) block[i] = rng.int(0, 255);
    } else if (lie === 4) {
      block.write('99999999999\u0000', 124, 'latin1'); // not octal
    } else {
      const size = [rng.int(0, 2 ** 20), rng.int(2 ** 20, 2 ** 33), 8 ** 11 - 1][lie];
      block.write(`${size.toString(8).padStart(11, '0')}\u0000`, 124, 'latin1');
    }
    maybeFix(rng, block, 0.9);
    return buf;
  },
  name(rng, buf) {
    const at = pickHeader(rng, buf);
    if (at === undefined) return buf;
    const block = buf.subarray(at, at + 512);
    const name = Buffer.from(hostileName(rng), 'latin1');
    block.fill(0, 0, 100);
    block.fill(0, 345, 500);
    name.copy(block, 0, 0, 100);
    if (name.length > 100) name.copy(block, 345, 100, 255);
    maybeFix(rng, block, 0.9);
    return buf;
  },
  pax(rng, buf) {
    const at = pickHeader(rng, buf);
    if (at === undefined) return buf;
    const records: Record<string, string> = {};
    if (rng.next() < 0.7) records.path = rng.next() < 0.5 ? `${hostileName(rng)}\u0000x` : hostileName(rng);
    if (rng.next() < 0.4) records.size = String(pick(rng, [0, 1, rng.int(2, 2 ** 20), 2 ** 40, -5]));
    let header = paxMember(records);
    if (rng.next() < 0.2) header = mutations.bitflips(rng, Buffer.from(header));
    return Buffer.concat([buf.subarray(0, at), header, buf.subarray(at)]);
  },
  type(rng, buf) {
    const at = pickHeader(rng, buf);
    if (at === undefined) return buf;
    buf[at + 156] =
      rng.next() < 0.8
        ? pick(
            rng,
            [...'0125xLgK7'].map((c) => c.charCodeAt(0)),
          )
        : rng.int(0, 255);
    maybeFix(rng, buf.subarray(at, at + 512), 0.9);
    return buf;
  },
  duplicate(rng, buf) {
    const h = headersIn(buf);
    if (h.length < 2) return buf;
    const i = rng.int(0, h.length - 2);
    const member = buf.subarray(h[i], h[i + 1]);
    const at = pick(rng, h);
    return Buffer.concat([buf.subarray(0, at), member, buf.subarray(at)]);
  },
  dropEnd(_rng, buf) {
    let end = buf.length;
    while (end >= 512 && buf.subarray(end - 512, end).every((b) => b === 0)) end -= 512;
    return buf.subarray(0, end);
  },
};
const NAMES = Object.keys(mutations);

// ---------------------------------------------------------------------------------------------
// One case

const quiet = new ProgressReporter(process.stderr, true);
const caps = { caption: 64 * 1024, json: 64 * 1024, image: 4 * 1024 * 1024 };
const outcomes = new Map<string, number>();
const reasons = new Map<string, number>();
const findings: string[] = [];
const count = (m: Map<string, number>, k: string) => m.set(k, (m.get(k) ?? 0) + 1);
const uncaught: unknown[] = [];
process.on('uncaughtException', (err) => uncaught.push(err));
process.on('unhandledRejection', (err) => uncaught.push(err));
let current = '';
process.on('exit', (code) => {
  if (current) {
    process.stderr.write(`exited (${code}) during ${current}\n${uncaught.map((e) => (e as Error).stack ?? String(e)).join('\n')}\n`);
    process.exitCode = 1;
  }
});

/** Every bad sample ledgered: the reader's samples and the metadata's keys are all catalogued or ledgered. */
async function checkAccounting(ctx: StageContext, label: string): Promise<void> {
  const shard = (await listShards(ctx.input))[0];
  const ledger = (await readLedger(ctx, ['catalog'])).filter((f) => f.stage === 'catalog');
  for (const f of ledger) count(reasons, f.reason);
  if (unsafeKeyProblem(shard.tar)) {
    if (!ledger.some((f) => f.reason === 'unsafe_member_name' && f.item === printableKey(shard.tar))) findings.push(`${label}: unsafe shard name not ledgered`);
    return;
  }
  const rows = await readParquet<CatalogRow>(ctx.work, ctx.layout.catalogPart(shard.number), catalogSchema);
  for (const r of rows) if (unsafeKeyProblem(r.image)) findings.push(`${label}: unsafe name catalogued: ${printableKey(r.image)}`);
  const known = new Set([...rows.map((r) => printableKey(r.key)), ...ledger.map((f) => f.item)]);
  const keys: string[] = [];
  try {
    for await (const s of readSamples(ctx.input, shard.tar, memberByteCaps(ctx.config.input))) keys.push(s.key);
  } catch (err) {
    if (!(err instanceof TarError)) throw err;
    if (!ledger.some((f) => f.reason === 'corrupt_tar')) findings.push(`${label}: tar fault not ledgered: ${err.message}`);
  }
  for (const key of (await readShardMetadata(ctx.input, shard.parquet)).downloaded) keys.push(key);
  const silent = keys.filter((k) => !known.has(printableKey(k)));
  if (silent.length) findings.push(`${label}: ${silent.length} sample(s) neither catalogued nor ledgered, e.g. ${printableKey(silent[0])}`);
}

let catalogCtx: StageContext | undefined;

async function runCase(n: number): Promise<void> {
  const rng = Rng.for(seed, n);
  let buf: Buffer = Buffer.from(valid);
  const applied: string[] = [];
  for (let i = rng.int(1, 3); i > 0; i--) {
    const name = pick(rng, NAMES);
    applied.push(name);
    buf = mutations[name](rng, buf);
  }
  const folder = rng.next() < 0.03 ? pick(rng, ['we\\ird', `ctl\u0001${token}`, '..x']) : '';
  if (folder) applied.push(`folder ${JSON.stringify(folder)}`);
  const pipeline = pipelineEvery > 0 && n % pipelineEvery === 0;
  const label = `case ${n} (--seed ${seed}; ${pipeline ? 'pipeline' : 'catalog'}; ${applied.join(', ')})`;
  current = label;
  await mkdir(path.join(corpus, folder), { recursive: true });
  await writeFile(path.join(corpus, folder, '00000.tar'), buf);
  if (folder) await rename(path.join(corpus, '00000.parquet'), path.join(corpus, folder, '00000.parquet'));
  const before = uncaught.length;
  const runDir = path.join(sandbox, `run-${n}`);
  try {
    if (pipeline) {
      const ctx = createContext(
        demoConfig(corpus, runDir, { input: { path: corpus, max_member_bytes: caps }, mine: { k: 5, recall_queries: 10 }, runner: { concurrency: 1 } }),
      );
      await runLocal(ctx, { progress: quiet });
      await checkAccounting(ctx, label);
      await exportDataset(ctx, openStorage(path.join(sandbox, `export-${n}`)), { size: 32, fit: 'contain', quality: 70, concurrency: 2 });
    } else {
      // One context for every catalog case: the same config and shard name give the same keys.
      if (!catalogCtx || folder) {
        const ctx = createContext(demoConfig(corpus, path.join(sandbox, 'run-0'), { input: { path: corpus, max_member_bytes: caps } }));
        await resolveRun(ctx, { stages: [new CatalogStage()] });
        if (folder) catalogCtx = undefined;
        else catalogCtx = ctx;
        await runCatalog(ctx, label);
      } else {
        await runCatalog(catalogCtx, label);
      }
    }
    count(outcomes, pipeline ? 'pipeline and export completed' : 'catalog completed');
  } catch (err) {
    count(outcomes, pipeline ? 'pipeline threw' : 'catalog threw');
    findings.push(`${label}: threw ${(err as Error).stack?.split('\n').slice(0, 3).join(' | ')}`);
  }
  if (uncaught.length > before) findings.push(`${label}: uncaught ${String(uncaught[before])}`);
  if (folder) {
    await rename(path.join(corpus, folder, '00000.parquet'), path.join(corpus, '00000.parquet'));
    await rm(path.join(corpus, folder), { recursive: true, force: true });
  }
  await rm(path.join(corpus, '00000.tar'), { force: true });
  if (pipeline) {
    await rm(runDir, { recursive: true, force: true });
    await rm(path.join(sandbox, `export-${n}`), { recursive: true, force: true });
  }
  const now = snapshot();
  if (now.join('\n') !== clean.join('\n')) {
    findings.push(`${label}: written outside the run's folders: ${now.filter((p) => !clean.includes(p)).join(', ')}`);
  }
}

async function runCatalog(ctx: StageContext, label: string): Promise<void> {
  await rm(path.join(sandbox, 'run-0', 'work'), { recursive: true, force: true });
  const stage = new CatalogStage();
  const [shard] = await stage.plan(ctx);
  await stage.run(ctx, shard);
  await checkAccounting(ctx, label);
}

const clean = snapshot();
const started = Date.now();
let n = 0;
while (Date.now() - started < seconds * 1000) await runCase(++n);
current = '';
const elapsed = (Date.now() - started) / 1000;

process.stdout.write(
  `fuzz-shard: ${n} cases in ${elapsed.toFixed(0)} s (seed ${seed}; ${Math.floor(n / pipelineEvery)} through the whole pipeline and export)\n`,
);
for (const [k, v] of [...outcomes].sort()) process.stdout.write(`  ${k.padEnd(32)} ${v}\n`);
process.stdout.write('catalog ledger entries by reason, over all cases:\n');
for (const [k, v] of [...reasons].sort((a, b) => b[1] - a[1])) process.stdout.write(`  ${k.padEnd(32)} ${v}\n`);
process.stdout.write(`findings: ${findings.length}\n`);
for (const f of findings.slice(0, 20)) process.stdout.write(`  ${f}\n`);
await rm(base, { recursive: true, force: true });
process.exitCode = findings.length ? 1 : 0;
