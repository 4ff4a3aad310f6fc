// The distributed runner under chaos against itself without faults, side by side on the same
// machine and corpus (the demo sample, data/sample): a fault-free run with N worker processes,
// then the same run while a random ready worker is killed -9 every 3-6 s and a fresh one started
// in its place. Prints each wall time, their ratio (goal: <= 2), the kills, and whether the
// triples are byte-identical. The workers of the fault-free run are started and warm before its
// clock starts; under chaos the replacements start cold, as on a cluster that reschedules a pod.
// Usage: npx tsx bench/distributed-chaos.ts [--workers 3] [--concurrency 2] [--lock-ms 30000] [--min-s 3] [--max-s 6] [--limit N]
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { stringify } from 'yaml';
import { parseConfig } from '../src/config/load.ts';
import { runDistributed } from '../src/runner/distributed/follow.ts';
import { buildSampleCorpus } from '../src/sample/openmoji.ts';
import { createContext } from '../src/runner/context.ts';
import { dropKeys } from '../test/distributed-keys.ts';

const { values } = parseArgs({
  options: {
    workers: { type: 'string', default: '3' },
    concurrency: { type: 'string', default: '2' },
    'lock-ms': { type: 'string', default: '30000' },
    'min-s': { type: 'string', default: '3' },
    'max-s': { type: 'string', default: '6' },
    limit: { type: 'string', default: '0' },
  },
});
const root = path.join(import.meta.dirname, '..');
const sample = path.join(root, 'data', 'sample');
await buildSampleCorpus({ outDir: sample });
process.env.MEGAPAIRS_CACHE = path.join(root, 'data', '.cache'); // built-in models are made once, not timed
const limit = Number(values.limit);

/** Workers that said ready: the ones a kill strands units of (one still starting holds none). */
const readyWorkers = new Set<ChildProcess>();

function startWorker(file: string): { child: ChildProcess; ready: Promise<void> } {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'src/cli/main.ts'), 'worker', 'all', '--config', file, '--grace', '0'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const ready = new Promise<void>((resolve) => {
    child.stdout!.on('data', (d) => {
      out += d;
      if (/ready: /.test(out)) {
        readyWorkers.add(child);
        resolve();
      }
    });
  });
  child.stderr!.on('data', () => {});
  return { child, ready };
}

const alive = (c: ChildProcess) => c.exitCode === null && c.signalCode === null;

async function timeRun(chaos: boolean): Promise<{ seconds: number; jsonl: string; kills: number; triples: number }> {
  const dir = await mkdtemp(path.join(tmpdir(), `megapairs-chaos-${chaos ? 'faults' : 'clean'}-`));
  const prefix = `mpchaos-${process.pid}-${Date.now()}`;
  const obj = {
    run: { name: 'chaos' },
    input: { path: sample, max_shards: limit ? Math.ceil(limit / 500) : 0 },
    work: path.join(dir, 'work'),
    output: path.join(dir, 'output'),
    runner: { kind: 'distributed', concurrency: Number(values.concurrency), lock_ms: Number(values['lock-ms']), backoff_ms: 200, max_stalls: 1000 },
    redis: { prefix },
  };
  const file = path.join(dir, 'config.yaml');
  await writeFile(file, stringify(obj));
  const config = parseConfig(obj);
  const ws: ChildProcess[] = [];
  let kills = 0;
  let done = false;
  try {
    const following = runDistributed(createContext(config), { write: () => {}, pollMs: 200 });
    const first = Array.from({ length: Number(values.workers) }, () => startWorker(file));
    ws.push(...first.map((w) => w.child));
    await Promise.all(first.map((w) => w.ready));
    const started = Date.now();
    const killing = (async () => {
      if (!chaos) return;
      const [min, max] = [Number(values['min-s']), Number(values['max-s'])];
      while (!done) {
        await sleep((min + Math.random() * (max - min)) * 1000);
        if (done) return;
        const live = ws.filter((w) => alive(w) && readyWorkers.has(w));
        const victim = live[Math.floor(Math.random() * live.length)];
        if (!victim) continue;
        victim.kill('SIGKILL');
        kills++;
        process.stderr.write(`kill ${kills} at ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
        ws.push(startWorker(file).child);
      }
    })();
    const result = await following;
    const seconds = (Date.now() - started) / 1000;
    done = true;
    await killing;
    return { seconds, jsonl: await readFile(path.join(dir, 'output', 'megapairs.jsonl'), 'utf8'), kills, triples: result.summary.triples };
  } finally {
    done = true;
    for (const w of ws) if (alive(w)) w.kill('SIGKILL');
    await dropKeys(`${prefix}:*`);
    await rm(dir, { recursive: true, force: true });
  }
}

const clean = await timeRun(false);
process.stderr.write(`fault-free run: ${clean.seconds.toFixed(1)} s\n`);
const faults = await timeRun(true);
console.log(
  [
    `workers ${values.workers} x concurrency ${values.concurrency}, runner.lock_ms ${values['lock-ms']}, a kill -9 every ${values['min-s']}-${values['max-s']} s`,
    `fault-free  ${clean.seconds.toFixed(1)} s, ${clean.triples} triples`,
    `chaos       ${faults.seconds.toFixed(1)} s, ${faults.kills} kills, ${faults.triples} triples`,
    `ratio       ${(faults.seconds / clean.seconds).toFixed(2)}x (goal <= 2x)`,
    `identical   ${faults.jsonl === clean.jsonl ? 'yes' : 'NO'}`,
  ].join('\n'),
);
process.exit(faults.jsonl === clean.jsonl ? 0 : 1);
