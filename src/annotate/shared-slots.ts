// An endpoint's limits across every process and thread of a distributed run, held in Redis: a
// sorted set of leases (concurrency; a lease expires on its own if its holder dies) and the next
// start time the request rate allows (requests/s). One script decides atomically, on Redis's clock.
import { createHash, randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Config } from '../config/schema.ts';
import type { SharedSlots } from './endpoint.ts';
import type { EndpointSettings } from './endpoint-settings.ts';
import type { OpenAIAnnotatorOptions } from './openai.ts';

// KEYS: leases, next start. ARGV: concurrency (0: none), ms between starts (0: none), lease ms, lease id.
// Returns -1 when every slot is taken, else the ms to wait before starting (the rate's reservation).
const ACQUIRE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local limit = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if limit > 0 and redis.call('ZCARD', KEYS[1]) >= limit then return -1 end
local wait = 0
local interval = tonumber(ARGV[2])
if interval > 0 then
  local start = math.max(now, tonumber(redis.call('GET', KEYS[2]) or '0'))
  redis.call('SET', KEYS[2], tostring(start + interval), 'PX', 600000)
  wait = start - now
end
local lease = tonumber(ARGV[3])
redis.call('ZADD', KEYS[1], now + wait + lease, ARGV[4])
redis.call('PEXPIRE', KEYS[1], lease * 2 + 600000)
return math.ceil(wait)
`;

/** How often a process asks again while every shared slot is taken. */
const FULL_POLL_MS = 10;

export function sharedSlots(redis: Redis, prefix: string, s: EndpointSettings, leaseMs: number): SharedSlots {
  // The endpoint's identity: every process with the same server and model shares one limit.
  const id = createHash('sha256').update(`${s.base_url}\u0000${s.model}`).digest('hex').slice(0, 16);
  const keys = [`${prefix}:annotate:${s.step}:${id}:leases`, `${prefix}:annotate:${s.step}:${id}:next`];
  const interval = s.requests_per_s ? 1000 / s.requests_per_s : 0;
  return {
    async acquire() {
      const lease = randomUUID();
      for (;;) {
        const wait = Number(await redis.eval(ACQUIRE, 2, ...keys, s.concurrency, interval, leaseMs, lease));
        if (wait >= 0) {
          if (wait > 0) await sleep(wait);
          return () => void redis.zrem(keys[0], lease).catch(() => {}); // an expired lease frees itself
        }
        await sleep(FULL_POLL_MS);
      }
    },
  };
}

/** Distributed runs: the endpoints' limits held in the run's Redis, shared by every worker and thread. */
export async function sharedLimits(config: Config): Promise<OpenAIAnnotatorOptions['shared']> {
  const openai = config.annotate.openai;
  if (config.runner.kind !== 'distributed' || config.annotate.annotator !== 'openai' || !openai) return undefined;
  // Loaded only here: a local run never needs ioredis.
  const { connectRedis } = await import('../runner/distributed/connection.ts');
  const redis = await connectRedis(config, 'megapairs-annotate-limits');
  return (s) => sharedSlots(redis, config.redis.prefix, s, openai.timeout_ms + 10_000);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
