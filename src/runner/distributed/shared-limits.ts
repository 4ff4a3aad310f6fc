// Limits across every process and thread of a distributed run (core/shared-limits.ts: a model
// endpoint's, for the annotate stage), held in the run's Redis: a sorted set of leases
// (concurrency; a lease expires on its own if its holder dies), the next start time the request
// rate allows (requests/s), a token bucket charged with what each reply reports (tokens/min),
// and a pause one process's 429 storm puts on all. Each operation is one
// script, atomic and on Redis's clock, so the processes' clocks never have to agree; every key
// expires on its own.
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Config } from '../../config/schema.ts';
import type { SharedLimit, SharedLimits, SharedSlot, SharedSlots } from '../../core/shared-limits.ts';

/** How often a process asks again while every shared slot is taken. */
const FULL_POLL_MS = 10;

// Redis's time in ms, and the token bucket's balance now (bucket: its key, tpm: its tokens/min):
// refilled at the rate up to one minute's worth, as Endpoint's own; a bucket that is not there
// (new, or expired once full) is full.
const nowAndBalance = (bucket: string, tpm: string) => `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local tpm = tonumber(${tpm})
local rate = tpm / 60000
local balance = tpm
local b = redis.call('HMGET', ${bucket}, 'balance', 'at')
if b[1] then balance = math.min(tpm, tonumber(b[1]) + (now - tonumber(b[2])) * rate) end
`;

// KEYS: leases, next start, tokens, pause. ARGV: concurrency (0: none), ms between starts (0: none),
// tokens/min (0: none), lease ms, lease id.
// Returns {1, ms}: taken, start in ms (the rate's reservation); {0, ms}: not taken, ask again in ms
// (paused, the token budget spent, or every slot taken).
const ACQUIRE = `${nowAndBalance('KEYS[3]', 'ARGV[3]')}
local paused = redis.call('PTTL', KEYS[4])
if paused > 0 then return {0, paused} end
if tpm > 0 and balance <= 0 then return {0, math.ceil((1 - balance) / rate)} end
local limit = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if limit > 0 and redis.call('ZCARD', KEYS[1]) >= limit then return {0, ${FULL_POLL_MS}} end
local wait = 0
local interval = tonumber(ARGV[2])
if interval > 0 then
  local start = math.max(now, tonumber(redis.call('GET', KEYS[2]) or '0'))
  redis.call('SET', KEYS[2], tostring(start + interval), 'PX', 600000)
  wait = start - now
end
local lease = tonumber(ARGV[4])
redis.call('ZADD', KEYS[1], now + wait + lease, ARGV[5])
redis.call('PEXPIRE', KEYS[1], lease * 2 + 600000)
return {1, math.ceil(wait)}
`;

// KEYS: tokens. ARGV: tokens/min, tokens to charge. The bucket expires a little after it would be
// full again, which is what a missing bucket means.
const CHARGE = `${nowAndBalance('KEYS[1]', 'ARGV[1]')}
balance = balance - tonumber(ARGV[2])
redis.call('HSET', KEYS[1], 'balance', tostring(balance), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil((tpm - balance) / rate) + 1000)
`;

// KEYS: pause. ARGV: ms. A shorter pause never cuts a longer one short.
const PAUSE = `
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], '1', 'PX', ARGV[1]) end
`;

/** `redis`: a connection, or how to get one when the first slot is asked for. */
export function sharedSlots(redis: Redis | (() => Promise<Redis>), prefix: string, limit: SharedLimit): SharedSlots {
  const connection = typeof redis === 'function' ? redis : async () => redis;
  const at = `${prefix}:${limit.id}`;
  const keys = [`${at}:leases`, `${at}:next`, `${at}:tokens`, `${at}:pause`];
  const interval = limit.requests_per_s ? 1000 / limit.requests_per_s : 0;
  const tpm = limit.tokens_per_min ?? 0;
  return {
    async acquire() {
      const redis = await connection();
      const lease = randomUUID();
      for (;;) {
        const [taken, wait] = (await redis.eval(ACQUIRE, 4, ...keys, limit.concurrency, interval, tpm, limit.leaseMs, lease)) as [number, number];
        if (taken) {
          if (wait > 0) await sleep(wait);
          return {
            release: () => void redis.zrem(keys[0], lease).catch(() => {}), // an expired lease frees itself
            // Sent before release on the same connection, so a freed slot's tokens are already counted.
            // A lost charge only undercounts one reply: it must not fail the request it paid for.
            charge: async (tokens) => {
              if (tpm && tokens > 0) await redis.eval(CHARGE, 1, keys[2], tpm, tokens).catch(() => {});
            },
          } satisfies SharedSlot;
        }
        await sleep(wait);
      }
    },
    pause(ms) {
      if (ms > 0)
        void connection()
          .then((redis) => redis.eval(PAUSE, 1, keys[3], Math.ceil(ms)))
          .catch(() => {});
    },
  };
}

/**
 * The limits of a distributed run, kept in its Redis for every worker and thread: one connection
 * per context, made when the first slot is asked for; a failed connection is tried again then.
 */
export function redisSharedLimits(config: Config): SharedLimits {
  let redis: Promise<Redis> | undefined;
  const connection = () =>
    // Loaded only here: a local run never needs ioredis.
    (redis ??= import('./connection.ts')
      .then((m) => m.connectRedis(config, 'megapairs-shared-limits'))
      .catch((err: Error) => {
        redis = undefined;
        throw err;
      }));
  return {
    slots: (limit) => sharedSlots(connection, config.redis.prefix, limit),
    async close() {
      const connected = await redis?.catch(() => undefined);
      redis = undefined;
      connected?.disconnect();
    },
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
