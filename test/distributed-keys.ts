// A test or bench run's Redis keys, by pattern: listed, or deleted after it (its own key prefix).
// Apart from distributed-harness.ts, which registers test hooks, so benches can use it too.
import { Redis } from 'ioredis';

/** Each SCAN page of the keys matching a pattern. */
async function forEachKeyPage(pattern: string, fn: (redis: Redis, keys: string[]) => Promise<void>): Promise<void> {
  const redis = new Redis({ host: '127.0.0.1', port: 6379, maxRetriesPerRequest: null });
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      if (keys.length) await fn(redis, keys);
      cursor = next;
    } while (cursor !== '0');
  } finally {
    await redis.quit();
  }
}

export async function redisKeys(pattern: string): Promise<string[]> {
  const out: string[] = [];
  await forEachKeyPage(pattern, async (_, keys) => void out.push(...keys));
  return out.sort();
}

/** Deletes every key matching a pattern, as a lost Redis or `clean` would leave it; returns how many. */
export async function dropKeys(pattern: string): Promise<number> {
  let n = 0;
  await forEachKeyPage(pattern, async (redis, keys) => void (n += await redis.unlink(...keys)));
  return n;
}
