// Reads a YAML config: expands ${VAR} from the environment, validates against the schema, and
// resolves relative local paths against the config file's folder, so a run does not depend on the
// directory it was started from.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { isUrl } from './location.ts';
import { configSchema, ENCODER_NAMES, type Config } from './schema.ts';
import { rememberSecrets } from '../secrets/redact.ts';

export class ConfigError extends Error {
  constructor(
    readonly file: string,
    readonly problems: string[],
  ) {
    super(`invalid config ${file}:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

/** Replaces ${VAR} (and ${VAR:-default}) in every string; an unset variable without default is an error. */
export function expandEnv(value: unknown, env: NodeJS.ProcessEnv, at: string[] = [], problems: string[] = []): unknown {
  if (typeof value === 'string') {
    return value.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g, (_m, name: string, fallback?: string) => {
      const v = env[name];
      if (v !== undefined && v !== '') return v;
      if (fallback !== undefined) return fallback;
      problems.push(`${at.join('.') || '(root)'}: environment variable ${name} is not set`);
      return '';
    });
  }
  if (Array.isArray(value)) return value.map((v, i) => expandEnv(v, env, [...at, String(i)], problems));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, expandEnv(v, env, [...at, k], problems)]));
  }
  return value;
}

function describeIssue(issue: z.core.$ZodIssue): string {
  const where = issue.path.length ? issue.path.join('.') : '(root)';
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((k) => `${where === '(root)' ? k : `${where}.${k}`}: unknown key`).join('\n  - ');
  }
  return `${where}: ${issue.message}`;
}

const isRemote = (p: string) => isUrl(p) || p.startsWith('builtin:');

/** Validates an already-parsed config object; `baseDir` anchors relative paths. */
export function parseConfig(raw: unknown, opts: { file?: string; baseDir?: string; env?: NodeJS.ProcessEnv } = {}): Config {
  const file = opts.file ?? '(inline config)';
  const problems: string[] = [];
  const expanded = expandEnv(raw ?? {}, opts.env ?? process.env, [], problems);
  if (problems.length) throw new ConfigError(file, problems);
  const result = configSchema.safeParse(expanded);
  if (!result.success) throw new ConfigError(file, result.error.issues.map(describeIssue));
  const cfg = result.data;
  const base = opts.baseDir ?? process.cwd();
  const abs = (p: string) => (isRemote(p) ? p : path.resolve(base, p));
  cfg.input.path = abs(cfg.input.path);
  cfg.work = abs(cfg.work);
  cfg.output = abs(cfg.output);
  for (const enc of ENCODER_NAMES.map((name) => cfg.encoders[name])) {
    enc.model = abs(enc.model);
    if ('tokenizer' in enc) enc.tokenizer = abs(enc.tokenizer);
  }
  return cfg;
}

export function loadConfig(file: string, env: NodeJS.ProcessEnv = process.env): Config {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(file, [`cannot read: ${(err as Error).message}`]);
  }
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (err) {
    throw new ConfigError(file, [`not valid YAML: ${(err as Error).message}`]);
  }
  const config = parseConfig(raw, { file, baseDir: path.dirname(path.resolve(file)), env });
  rememberSecrets(config, env); // from here on, what this process prints or stores leaves them out
  return config;
}

/** The JSON Schema editors use to complete and check config files (yaml-language-server). */
export function configJsonSchema(): object {
  return z.toJSONSchema(configSchema, { io: 'input', target: 'draft-7' });
}
