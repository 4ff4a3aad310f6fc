// Peak memory of a run whose corpus holds one huge member, beside the same run without it. Builds a
// small demo corpus (100 images in 2 shards) plus a third shard of 10 samples; the huge cases add
// to that shard one sample whose .txt (or .json) member is --mib MiB of zeros, streamed to disk.
// Each case is a `megapairs run` in a child process under /usr/bin/time -v, so its maximum
// resident set size is that run's alone. The huge member must be ledgered member_too_large and the
// peak must stay near the normal run's (before input.max_member_bytes, a 400 MB caption ran the
// heap out of memory at 5.2 GB).
// Usage: npx tsx bench/big-member.ts [--mib 400]
import { spawn } from 'node:child_process';
import { createReadStream, createWriteStream, existsSync, readFileSync, readdirSync } from 'node:fs';
import { cp, mkdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { once } from 'node:events';
import { parseArgs } from 'node:util';
import { readTarEntries } from '../src/corpus/tar.ts';
import { buildSampleCorpus } from '../src/sample/openmoji.ts';
import { demoConfigObject, repoRoot, tempDir, writeConfigFile } from '../test/helpers.ts';
import { END_OF_ARCHIVE, tarHeader, tarMember } from '../test/hostile-tar.ts';

const { values } = parseArgs({ options: { mib: { type: 'string', default: '400' } } });
const hugeBytes = Number(values.mib) * 1024 * 1024;

/** Writes shard 00002: ten samples taken from shard 00000 under new keys, then (optionally) one with a huge member. */
async function thirdShard(corpus: string, huge?: 'txt' | 'json'): Promise<void> {
  const byKey = new Map<string, Map<string, Buffer>>();
  for await (const e of readTarEntries(createReadStream(path.join(corpus, '00000.tar')), '00000.tar')) {
    const [key, ext] = e.name.split('.');
    if (!byKey.has(key) && byKey.size === 10) break;
    byKey.set(key, (byKey.get(key) ?? new Map()).set(ext, e.data));
  }
  const out = createWriteStream(path.join(corpus, '00002.tar'));
  const write = async (b: Buffer) => {
    if (!out.write(b)) await once(out, 'drain');
  };
  let n = 0;
  for (const members of byKey.values()) {
    const key = `2${String(n++).padStart(5, '0')}`;
    for (const ext of ['png', 'txt']) await write(tarMember(`${key}.${ext}`, members.get(ext)!));
  }
  if (huge) {
    const first = [...byKey.values()][0];
    await write(tarMember('299999.png', first.get('png')!));
    if (huge === 'json') await write(tarMember('299999.txt', first.get('txt')!));
    await write(tarHeader(`299999.${huge}`, hugeBytes));
    const chunk = Buffer.alloc(1024 * 1024);
    for (let left = hugeBytes; left > 0; left -= chunk.length) await write(left >= chunk.length ? chunk : chunk.subarray(0, left));
    await write(Buffer.alloc((512 - (hugeBytes % 512)) % 512));
  }
  await write(END_OF_ARCHIVE);
  out.end();
  await once(out, 'finish');
}

interface Outcome {
  label: string;
  code: number | null;
  maxRssMb: number;
  wallS: number;
  reasons: Record<string, number>;
}

function timedRun(label: string, configFile: string, work: string): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const child = spawn('/usr/bin/time', ['-v', process.execPath, '--import', 'tsx', path.join(repoRoot, 'src/cli/main.ts'), 'run', '--config', configFile], {
      cwd: repoRoot,
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.once('error', reject);
    child.once('exit', (code) => {
      const rss = /Maximum resident set size \(kbytes\): (\d+)/.exec(stderr);
      const wall = /Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)/.exec(stderr);
      if (!rss || !wall) return reject(new Error(`${label}: no /usr/bin/time figures in:\n${stderr.slice(-2000)}`));
      const reasons: Record<string, number> = {};
      const failures = path.join(work, 'failures');
      const files = existsSync(failures) ? readdirSync(failures, { recursive: true, withFileTypes: true }) : [];
      for (const f of files.filter((e) => e.isFile() && e.name.endsWith('.jsonl'))) {
        for (const line of readFileSync(path.join(f.parentPath, f.name), 'utf8').split('\n').filter(Boolean)) {
          const reason = (JSON.parse(line) as { reason: string }).reason;
          reasons[reason] = (reasons[reason] ?? 0) + 1;
        }
      }
      resolve({
        label,
        code,
        maxRssMb: Number(rss[1]) / 1024,
        wallS: Number(wall[1] ?? 0) * 3600 + Number(wall[2]) * 60 + Number(wall[3]),
        reasons,
      });
    });
  });
}

const root = tempDir('big-member');
const base = path.join(root, 'base');
await buildSampleCorpus({ outDir: base, limit: 100, shardSize: 50 });
const outcomes: Outcome[] = [];
for (const [label, huge] of [
  ['normal corpus', undefined],
  [`+ one ${values.mib} MiB .txt member`, 'txt'],
  [`+ one ${values.mib} MiB .json member`, 'json'],
] as const) {
  const dir = path.join(root, huge ?? 'normal');
  const corpus = path.join(dir, 'corpus');
  await mkdir(dir, { recursive: true });
  await cp(base, corpus, { recursive: true });
  await thirdShard(corpus, huge);
  const config = writeConfigFile(dir, demoConfigObject(corpus, dir));
  outcomes.push(await timedRun(label, config, path.join(dir, 'work')));
  await rm(corpus, { recursive: true, force: true });
  const o = outcomes[outcomes.length - 1];
  process.stdout.write(
    `${o.label.padEnd(32)} exit ${o.code}  max RSS ${o.maxRssMb.toFixed(0).padStart(5)} MB  wall ${o.wallS.toFixed(1).padStart(5)} s  ledger ${JSON.stringify(o.reasons)}\n`,
  );
}
const normal = outcomes[0].maxRssMb;
for (const o of outcomes.slice(1)) process.stdout.write(`${o.label}: peak ${(o.maxRssMb / normal).toFixed(2)}x the normal run's\n`);
await rm(root, { recursive: true, force: true });
