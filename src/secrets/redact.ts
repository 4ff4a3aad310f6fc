// Secrets never recorded: every message this process stores or prints (ledger entries, logs, unit
// errors that BullMQ keeps in Redis, summary.json, report.html, metrics) passes through redact(),
// which replaces the value of every configured secret variable with its name. The variables are
// the API key of every annotation endpoint (each `api_key_env` under `annotate`), the S3 secret,
// the Redis password and the dashboard token; a config registers them when it is loaded or a
// context is made from it.
// Values under 8 characters are not replaced: a real key is longer, and replacing "EMPTY" (what
// vLLM takes as a key) or "none" would garble ordinary words.
import type { Config } from '../config/schema.ts';

/** The environment variable whose value, when set, lets the dashboard's token holder control the run. */
export const DASHBOARD_TOKEN_ENV = 'MEGAPAIRS_DASHBOARD_TOKEN';
const MIN_SECRET_LENGTH = 8;

/** Every `api_key_env` under `value`: how an annotator backend's section names its keys' variables. */
function apiKeyVariables(value: unknown): string[] {
  if (!value || typeof value !== 'object') return [];
  return Object.entries(value).flatMap(([k, v]) => (k === 'api_key_env' && typeof v === 'string' ? [v] : apiKeyVariables(v)));
}

/** Names of the variables that hold the config's secrets. */
export function secretVariables(config: Config): string[] {
  const names = [...apiKeyVariables(config.annotate), 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', config.redis?.password_env, DASHBOARD_TOKEN_ENV];
  return [...new Set(names.filter((n): n is string => Boolean(n)))];
}

/** Each secret value this process knows, longest first (a value inside another is replaced after it). */
const known = new Map<string, string>();
let ordered: Array<[string, string]> = [];

/** Registers the config's secret values (read from `env` now) for redact(). */
export function rememberSecrets(config: Config, env: NodeJS.ProcessEnv = process.env): void {
  let added = false;
  for (const name of secretVariables(config)) {
    const value = env[name];
    if (value && value.length >= MIN_SECRET_LENGTH && !known.has(value)) {
      known.set(value, name);
      added = true;
    }
  }
  if (added) ordered = [...known].sort(([a], [b]) => b.length - a.length);
}

/** The same error (its class kept), its message and stack redacted: for errors that go where they are kept (BullMQ's failedReason). */
export function redactError<E>(err: E): E {
  if (err instanceof Error) {
    err.message = redact(err.message);
    if (err.stack) err.stack = redact(err.stack);
  }
  return err;
}

/** `fn`, whose rejections are redacted (redactError): for a queue job's processor. */
export const redacting =
  <A extends unknown[], R>(fn: (...args: A) => Promise<R>) =>
  (...args: A): Promise<R> =>
    fn(...args).catch((err: unknown) => Promise.reject(redactError(err)));

/** The text with every known secret value replaced by `[$NAME]`. */
export function redact(text: string): string {
  for (const [value, name] of ordered) if (text.includes(value)) text = text.split(value).join(`[$${name}]`);
  return text;
}
