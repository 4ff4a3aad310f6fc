// A process of the two-process limit tests (annotate-endpoints.test.ts): annotates pairs against
// the server at argv[2] with limits shared through Redis under the key prefix argv[3]; argv[6],
// when given, is JSON merged into annotate.openai. With LIMIT_TEST_WAIT=1 it prints "ready" once
// connected and waits for a line on stdin before sending, so a test can start it at a set moment.
import { once } from 'node:events';
import { Redis } from 'ioredis';
import sharp from 'sharp';
import { endpointLimit } from '../src/annotate/endpoint-settings.ts';
import { OpenAIAnnotator } from '../src/annotate/openai.ts';
import { sharedSlots } from '../src/runner/distributed/shared-limits.ts';
import { configSchema } from '../src/config/schema.ts';
import { mapPool } from '../src/util/pool.ts';
import { Rng } from '../src/util/rng.ts';

const [url, prefix, first, count] = [process.argv[2], process.argv[3], Number(process.argv[4]), Number(process.argv[5])];
const extra = JSON.parse(process.argv[6] ?? '{}');
const cfg = configSchema.parse({
  input: { path: 'x' },
  work: 'w',
  output: 'o',
  annotate: { annotator: 'openai', openai: { base_url: url, mllm: 'm', llm: 'l', concurrency: 3, instruct: { requests_per_s: 10 }, ...extra } },
}).annotate.openai!;
const redis = new Redis({ host: '127.0.0.1', port: 6379, maxRetriesPerRequest: null });
// The environment's OPENAI_API_KEY: a test tells the processes apart at the server by it.
const a = new OpenAIAnnotator(cfg, process.env, { log: () => {}, shared: (s) => sharedSlots(redis, prefix, endpointLimit(s, 30_000)) });
const png = (k: number) =>
  sharp({ create: { width: 16, height: 16, channels: 3, background: { r: (k * 53) % 256, g: (k * 101) % 256, b: (k * 197) % 256 } } })
    .png()
    .toBuffer();
if (process.env.LIMIT_TEST_WAIT === '1') {
  await redis.ping();
  process.stdout.write('ready\n');
  await once(process.stdin, 'data');
  process.stdin.destroy(); // else it keeps the process alive
}
await mapPool(
  Array.from({ length: count }, (_, i) => first + i),
  16,
  async (i) => {
    const [q, t] = await Promise.all([png(2 * i), png(2 * i + 1)]);
    const pair = { key: '', caption: '' };
    await a.annotate(
      {
        pairId: `p${i}`,
        relation: 'visual_semantic',
        similarity: 0.9,
        query: { ...pair, key: `q${i}`, bytes: async () => q },
        target: { ...pair, key: `t${i}`, bytes: async () => t },
      },
      new Rng(i),
    );
  },
);
redis.disconnect();
