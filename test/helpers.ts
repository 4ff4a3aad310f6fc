// Shared by the pipeline tests: a small sample corpus, configs pointing at temp folders, and a
// DuckDB connection for reading outputs back with an independent reader.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { parse, stringify } from 'yaml';
import { parseConfig } from '../src/config/load.ts';
import type { Config } from '../src/config/schema.ts';
import { buildSampleCorpus } from '../src/sample/openmoji.ts';

export const repoRoot = path.join(import.meta.dirname, '..');

export function tempDir(prefix: string): string {
  return mkdtempSync(path.join(tmpdir(), `megapairs-${prefix}-`));
}

let slice: Promise<string> | undefined;
/** 150 openmoji images in 3 shards, built once per test process. */
export function sampleSlice(): Promise<string> {
  slice ??= (async () => {
    const dir = path.join(tempDir('slice'), 'sample');
    await buildSampleCorpus({ outDir: dir, limit: 150, shardSize: 50 });
    return dir;
  })();
  return slice;
}

/** configs/demo.yaml (as a YAML-able object) pointed at `input`, with work and output under `root`. */
export function demoConfigObject(input: string, root: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const demo = parse(readFileSync(path.join(repoRoot, 'configs', 'demo.yaml'), 'utf8')) as Record<string, unknown>;
  return {
    ...demo,
    run: { name: 'test', seed: 7 },
    input: { ...(demo.input as object), path: input },
    work: path.join(root, 'work'),
    output: path.join(root, 'output'),
    ...extra,
  };
}

export function demoConfig(input: string, root: string, extra: Record<string, unknown> = {}): Config {
  return parseConfig(demoConfigObject(input, root, extra));
}

export function writeConfigFile(root: string, obj: Record<string, unknown>): string {
  const file = path.join(root, 'config.yaml');
  writeFileSync(file, stringify(obj));
  return file;
}

export async function duckdb(sql: string): Promise<Record<string, unknown>[]> {
  const db = await DuckDBInstance.create(':memory:');
  const conn = await db.connect();
  try {
    return (await conn.runAndReadAll(sql)).getRowObjectsJson() as Record<string, unknown>[];
  } finally {
    conn.closeSync();
  }
}

export const readJsonl = (file: string) =>
  readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
