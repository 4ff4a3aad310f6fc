// Shared by the pipeline tests: a small sample corpus, configs pointing at temp folders, and a
// DuckDB connection for reading outputs back with an independent reader.
import { execFileSync, spawn } from 'node:child_process';
import { createReadStream, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { parse, stringify } from 'yaml';
import { parseConfig } from '../src/config/load.ts';
import type { Config } from '../src/config/schema.ts';
import { readTarEntries, TarWriter } from '../src/corpus/tar.ts';
import { pipelineStages } from '../src/pipeline.ts';
import { buildSampleCorpus } from '../src/sample/openmoji.ts';
import type { Stage } from '../src/core/stage.ts';

export const repoRoot = path.join(import.meta.dirname, '..');

/** Whether python3 with numpy is here, for the tests that check numpy reads what we write. */
export const hasNumpy = (() => {
  try {
    execFileSync('python3', ['-c', 'import numpy'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

/** Every file under a folder, recursively. */
export function filesUnder(dir: string, out: string[] = []): string[] {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) filesUnder(p, out);
    else out.push(p);
  }
  return out;
}

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

export interface SliceSample {
  key: string;
  png: Buffer;
  txt: Buffer;
}

/** The samples of the given shards of the slice, in tar order. */
export async function sliceSamples(shards: string[]): Promise<SliceSample[]> {
  const slice = await sampleSlice();
  const samples: SliceSample[] = [];
  for (const shard of shards) {
    const byKey = new Map<string, SliceSample>();
    for await (const e of readTarEntries(createReadStream(path.join(slice, shard)), shard)) {
      const [key, ext] = e.name.split('.');
      const s = byKey.get(key) ?? ({ key } as SliceSample);
      if (ext === 'png') s.png = e.data;
      if (ext === 'txt') s.txt = e.data;
      byKey.set(key, s);
    }
    samples.push(...byKey.values());
  }
  return samples;
}

/** The tar members of samples: {key}.png and {key}.txt. */
export const membersOf = (list: SliceSample[]) =>
  list.flatMap(
    (s) =>
      [
        [`${s.key}.png`, s.png],
        [`${s.key}.txt`, s.txt],
      ] as Array<[string, Buffer]>,
  );

/** A tar of the members; its bytes and each member's header offset. */
export async function tarOf(members: Array<[string, Buffer]>): Promise<{ bytes: Buffer; headers: Map<string, number> }> {
  const tar = new TarWriter();
  const headers = new Map<string, number>();
  for (const [name, data] of members) headers.set(name, (await tar.add(name, data)).headerOffset);
  return { bytes: await tar.finish(), headers };
}

/** Runs the real CLI as a child process, as a user would; its exit code and output. */
export function runCli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'src/cli/main.ts'), ...args], {
      cwd: repoRoot,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** The pipeline's stages up to and including `last`. */
export function stagesUpTo(last: string): Stage<any>[] {
  const stages = pipelineStages();
  return stages.slice(0, stages.findIndex((s) => s.name === last) + 1);
}
