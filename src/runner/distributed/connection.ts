// How the distributed runner reaches Redis: the URL from the config, else $REDIS_URL, else the
// local default; the password from the variable `redis.password_env` names (or the URL), never
// from a logged string; TLS for rediss:// or `redis.tls: true`.
import { Redis, type RedisOptions } from 'ioredis';
import type { Config } from '../../config/schema.ts';

const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';

export function redisOptions(config: Config, env: NodeJS.ProcessEnv = process.env): RedisOptions {
  const raw = config.redis.url ?? (env.REDIS_URL || DEFAULT_REDIS_URL);
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new Error(`redis.url: not a URL (expected redis://host:port or rediss://host:port)`);
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') throw new Error(`redis.url: scheme ${url.protocol} is not redis: or rediss:`);
  const password = env[config.redis.password_env] || decodeURIComponent(url.password) || undefined;
  const db = url.pathname.length > 1 ? Number(url.pathname.slice(1)) : 0;
  if (!Number.isInteger(db) || db < 0) throw new Error(`redis.url: database "${url.pathname.slice(1)}" is not a number`);
  return {
    host: url.hostname.replace(/^\[|\]$/g, '') || '127.0.0.1',
    port: url.port ? Number(url.port) : 6379,
    username: decodeURIComponent(url.username) || undefined,
    password,
    db,
    tls: url.protocol === 'rediss:' || config.redis.tls ? { servername: url.hostname } : undefined,
    // BullMQ workers block on Redis; they must wait out a reconnect rather than fail commands.
    maxRetriesPerRequest: null,
  };
}

/** The Redis location for messages: scheme, host, port and database, never credentials. */
export function describeRedis(config: Config, env: NodeJS.ProcessEnv = process.env): string {
  const o = redisOptions(config, env);
  return `${o.tls ? 'rediss' : 'redis'}://${o.host}:${o.port}/${o.db}${o.password ? ' (with password)' : ''}`;
}

/**
 * A connection that is ready to use: once up, it reconnects on its own (workers ride out a Redis
 * restart), but one that cannot connect at all fails now, naming where it tried.
 */
export async function connectRedis(config: Config, name: string, timeoutMs = 15_000): Promise<Redis> {
  const redis = new Redis({ ...redisOptions(config), connectionName: name });
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no answer in ${timeoutMs / 1000}s`)), timeoutMs);
      redis.once('ready', () => (clearTimeout(timer), resolve()));
      redis.once('error', (err) => (clearTimeout(timer), reject(err)));
    });
  } catch (err) {
    redis.disconnect();
    throw new Error(`cannot reach Redis at ${describeRedis(config)}: ${(err as Error).message}`);
  }
  redis.on('error', () => {}); // reconnects are logged by the BullMQ classes that use it
  return redis;
}

/** Errors that only say Redis cannot be reached now: an outage, told once by watchOutages. */
export function isConnectionError(err: Error & { code?: string }): boolean {
  return (
    ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH'].includes(err.code ?? '') ||
    /Connection is closed|connect ECONNREFUSED|Stream isn't writeable|read ECONNRESET/.test(err.message)
  );
}

/**
 * One line when the connection to Redis is lost and one when it is back, with how long it was
 * down, instead of a line per failed reconnect (BullMQ's clients report each, many a second).
 * `onBack` runs once it is back, e.g. to give workers time to reconnect before asking for them.
 */
export function watchOutages(redis: Redis, config: Config, say: (line: string) => void, onBack?: () => void): { stop(): void } {
  let since: number | undefined;
  const lost = () => {
    if (since !== undefined) return;
    since = Date.now();
    say(`lost Redis at ${describeRedis(config)}: waiting for Redis (reconnecting)`);
  };
  const back = () => {
    if (since === undefined) return;
    say(`Redis at ${describeRedis(config)} is back after ${((Date.now() - since) / 1000).toFixed(1)}s down`);
    since = undefined;
    onBack?.();
  };
  redis.on('close', lost);
  redis.on('ready', back);
  return {
    stop: () => {
      redis.off('close', lost);
      redis.off('ready', back);
    },
  };
}
