// The openai annotator against chat servers with a fixed number of slots and 200 ms per reply (one
// server per step, in another process): the request rate each endpoint reaches against the ideal
// slots / latency, at 16 and 64 slots, without faults (goal >= 0.95) and with 1% hung requests and
// 5% 429s with Retry-After (goal >= 0.85); requests per pair; client CPU per request. Pairs are
// annotated as the annotate stage does (same pairs in flight, request cache on a local folder).
// Beside each, in the same run, the same servers driven by a bare client (N fetch loops per server,
// no limiter, no cache, no checks): what this machine reaches at that moment, so the ratio
// annotator / bare client shows the annotator's own cost even on a loaded machine.
// Usage: npx tsx bench/annotate.ts [--seconds 12] [--slots 16,64]
import { fork } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import type { PairToAnnotate } from '../src/annotate/annotator.ts';
import { OpenAIAnnotator } from '../src/annotate/openai.ts';
import { RequestCache } from '../src/annotate/request-cache.ts';
import { configSchema } from '../src/config/schema.ts';
import { LocalStorage } from '../src/storage/local.ts';
import { Rng } from '../src/util/rng.ts';
import type { FaultRates, ServerOptions } from '../test/chat-server.ts';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '12' }, slots: { type: 'string', default: '16,64' } } });
const SECONDS = Number(values.seconds);
const WARM_S = 2;
const LATENCY_MS = 200;

interface Stats {
  requests: number;
  good: number;
  faults: Record<string, number>;
  maxBusy: number;
}

const server = fork(path.join(import.meta.dirname, 'chat-server-process.ts'), { execArgv: ['--import', 'tsx'], stdio: 'inherit' });
const ask = <T>(m: object, key: string) =>
  new Promise<T>((resolve) => {
    const on = (r: Record<string, unknown>) => {
      if (!(key in r)) return;
      server.off('message', on);
      resolve(r[key] as T);
    };
    server.on('message', on);
    server.send(m);
  });

// 200 images, paired at random: images recur across pairs, as in a mined corpus.
const images = await Promise.all(
  Array.from({ length: 200 }, (_, k) =>
    sharp({ create: { width: 256, height: 256, channels: 3, background: { r: (k * 53) % 256, g: (k * 101) % 256, b: (k * 197) % 256 } } })
      .png()
      .toBuffer(),
  ),
);
function pair(i: number): PairToAnnotate {
  const rng = new Rng(i);
  const [q, t] = [rng.int(0, 199), rng.int(0, 199)];
  return {
    pairId: `p${i}`,
    relation: 'visual_semantic',
    similarity: 0.9,
    query: { key: `i${q}`, caption: '', bytes: async () => images[q] },
    target: { key: `i${t}`, caption: '', bytes: async () => images[t] },
  };
}

async function scenario(slots: number, faults: FaultRates | undefined) {
  const opts: ServerOptions = { latencyMs: LATENCY_MS, slots, faults, retryAfterS: 1, seed: slots };
  const [d, i] = await ask<string[]>({ start: opts }, 'urls');
  const cfg = configSchema.parse({
    input: { path: 'x' },
    work: 'w',
    output: 'o',
    annotate: {
      annotator: 'openai',
      openai: { mllm: 'mllm', llm: 'llm', describe: { base_url: d, concurrency: slots }, instruct: { base_url: i, concurrency: slots } },
    },
  }).annotate.openai!;
  const dir = await mkdtemp(path.join(tmpdir(), 'megapairs-bench-annotate-'));
  const annotator = new OpenAIAnnotator(cfg, {}, { cache: new RequestCache(new LocalStorage(dir)), log: () => {} });

  let next = 0;
  let done = 0;
  let stopAt = Infinity;
  const worker = async () => {
    while (Date.now() < stopAt) {
      const n = next++;
      await annotator.annotate(pair(n), new Rng(n));
      done++;
    }
  };
  const started = Date.now();
  stopAt = started + SECONDS * 1000;
  const workers = Array.from({ length: annotator.pairsInFlight }, worker);
  await new Promise((r) => setTimeout(r, WARM_S * 1000));
  const [s0, c0, t0] = [await ask<Stats[]>({ stats: true }, 'stats'), process.cpuUsage(), Date.now()];
  await new Promise((r) => setTimeout(r, stopAt - Date.now()));
  const [s1, c1, t1] = [await ask<Stats[]>({ stats: true }, 'stats'), process.cpuUsage(), Date.now()];
  await Promise.all(workers);
  const end = await ask<Stats[]>({ stats: true }, 'stats');
  await ask({ stop: true }, 'stopped');
  await rm(dir, { recursive: true, force: true });

  const secs = (t1 - t0) / 1000;
  const ideal = slots / (LATENCY_MS / 1000);
  const rates = s1.map((s, k) => (s.good - s0[k].good) / secs);
  const sent = s1.reduce((a, s, k) => a + s.requests - s0[k].requests, 0);
  const cpuMs = (c1.user - c0.user + c1.system - c0.system) / 1000;
  return {
    slots,
    faults: faults
      ? Object.entries(faults)
          .map(([k, v]) => `${k} ${v * 100}%`)
          .join(', ')
      : 'none',
    describe: rates[0] / ideal,
    instruct: rates[1] / ideal,
    reqPerSec: rates[0] + rates[1],
    ideal: 2 * ideal,
    requestsPerPair: end.reduce((a, s) => a + s.requests, 0) / done,
    cpuPerRequestMs: cpuMs / sent,
    pairs: done,
    maxBusy: end.map((s) => s.maxBusy),
  };
}

/** The bare client: `slots` loops per server, each POSTing a small request and reading the reply. */
async function bare(slots: number): Promise<{ rate: number; cpuPerRequestMs: number }> {
  const urls = await ask<string[]>({ start: { latencyMs: LATENCY_MS, slots, seed: slots } }, 'urls');
  const body = JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hello' }] });
  const stopAt = Date.now() + SECONDS * 1000;
  const loop = async (url: string) => {
    while (Date.now() < stopAt)
      await (await fetch(`${url}/chat/completions`, { method: 'POST', body, headers: { 'content-type': 'application/json' } })).text();
  };
  const loops = urls.flatMap((u) => Array.from({ length: slots }, () => loop(u)));
  await new Promise((r) => setTimeout(r, WARM_S * 1000));
  const [s0, c0, t0] = [await ask<Stats[]>({ stats: true }, 'stats'), process.cpuUsage(), Date.now()];
  await new Promise((r) => setTimeout(r, stopAt - Date.now()));
  const [s1, c1, t1] = [await ask<Stats[]>({ stats: true }, 'stats'), process.cpuUsage(), Date.now()];
  await Promise.all(loops);
  await ask({ stop: true }, 'stopped');
  const good = s1.reduce((a, s, k) => a + s.good - s0[k].good, 0);
  return { rate: good / ((t1 - t0) / 1000), cpuPerRequestMs: (c1.user - c0.user + c1.system - c0.system) / 1000 / good };
}

const results = [];
for (const slots of values.slots.split(',').map(Number)) {
  const { rate: reference, cpuPerRequestMs } = await bare(slots);
  console.log(
    `slots ${String(slots).padStart(3)}  bare client: good replies/s ${reference.toFixed(0)} of ideal ${(2 * slots) / (LATENCY_MS / 1000)} ` +
      `(${((reference * LATENCY_MS) / 1000 / (2 * slots)).toFixed(3)})  client CPU/request ${cpuPerRequestMs.toFixed(2)} ms`,
  );
  for (const faults of [undefined, { hang: 0.01, rate_limited: 0.05 }]) {
    const r = await scenario(slots, faults);
    results.push(r);
    console.log(
      `slots ${String(r.slots).padStart(3)}  faults ${r.faults.padEnd(28)}  good replies/s ${r.reqPerSec.toFixed(0).padStart(4)} of ideal ${r.ideal}: ` +
        `describe ${r.describe.toFixed(3)}, instruct ${r.instruct.toFixed(3)}  requests/pair ${r.requestsPerPair.toFixed(3)}  ` +
        `vs bare client ${(r.reqPerSec / reference).toFixed(3)}  client CPU/request ${r.cpuPerRequestMs.toFixed(2)} ms  (${r.pairs} pairs, most in slots ${r.maxBusy.join('/')})`,
    );
  }
}
server.disconnect();
