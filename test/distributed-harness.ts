// Shared by the distributed tests: runs with a Redis key prefix of their own (removed after the
// test file), and CLI processes (workers, `megapairs run`) spawned as a user would start them.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after } from 'node:test';
import { createContext } from '../src/runner/context.ts';
import { runLocal } from '../src/runner/local.ts';
import { ProgressReporter } from '../src/runner/progress.ts';
import { dropKeys } from './distributed-keys.ts';
import { demoConfig, demoConfigObject, repoRoot, sampleSlice, tempDir, writeConfigFile } from './helpers.ts';

const prefixes: string[] = [];
const spawned: ChildProcess[] = [];

export { dropKeys, redisKeys } from './distributed-keys.ts';

after(async () => {
  for (const c of spawned) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL'); // left by a failed test
  for (const prefix of prefixes) await dropKeys(`${prefix}:*`);
});

/** The sample slice, and the triples a local run makes of it: what a distributed run of it must write. */
export async function localReference(tag: string): Promise<{ input: string; reference: string }> {
  const input = await sampleSlice();
  const root = tempDir(`${tag}-ref`);
  await runLocal(createContext(demoConfig(input, root)), { progress: new ProgressReporter(process.stderr, true) });
  return { input, reference: readFileSync(path.join(root, 'output', 'megapairs.jsonl'), 'utf8') };
}

/** Registers a prefix for removal after the tests. */
export const ownPrefix = (prefix: string) => void prefixes.push(prefix);

/** A fresh run folder and config: a queue prefix of its own, short locks so stalls recover fast. */
export function newRun(input: string, name: string, extra: Record<string, unknown> = {}) {
  const root = tempDir(`dist-${name}`);
  const prefix = `mptest-${name}-${process.pid}-${Date.now()}`;
  ownPrefix(prefix);
  const obj = demoConfigObject(input, root, {
    runner: { kind: 'distributed', concurrency: 1, lock_ms: 2000, backoff_ms: 100 },
    redis: { prefix },
    ...extra,
  });
  return { root, prefix, obj, file: writeConfigFile(root, obj), jsonl: () => readFileSync(path.join(root, 'output', 'megapairs.jsonl'), 'utf8') };
}

export interface Proc {
  child: ChildProcess;
  out: () => string;
  err: () => string;
  /** Resolves with the first stdout match (after `from` characters), e.g. a unit starting. */
  waitFor(re: RegExp, from?: number): Promise<RegExpMatchArray>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export function cli(args: string[], env: NodeJS.ProcessEnv = process.env): Proc {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'src/cli/main.ts'), ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
  spawned.push(child);
  let out = '';
  let err = '';
  const waiters: Array<{ re: RegExp; from: number; resolve: (m: RegExpMatchArray) => void }> = [];
  const check = () => {
    for (const w of waiters.splice(0)) {
      const m = out.slice(w.from).match(w.re);
      if (m) w.resolve(m);
      else waiters.push(w);
    }
  };
  child.stdout!.on('data', (d) => ((out += d), check()));
  child.stderr!.on('data', (d) => (err += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  void exited.then(({ code }) => code && console.error(`${args.join(' ')} exited ${code}:\n${out}\n${err}`));
  return {
    child,
    out: () => out,
    err: () => err,
    waitFor: (re, from = 0) =>
      new Promise((resolve, reject) => {
        waiters.push({ re, from, resolve });
        check();
        void exited.then(() => setTimeout(() => reject(new Error(`exited before ${re}:\n${out}\n${err}`)), 100));
      }),
    exited,
  };
}

export async function workers(file: string, n: number, grace = 10, kind = 'all'): Promise<Proc[]> {
  const ws = Array.from({ length: n }, () => cli(['worker', kind, '--config', file, '--grace', String(grace)]));
  // A worker started before `megapairs run` waits for the run to be published, then says ready.
  await Promise.all(ws.map((w) => w.waitFor(/ready: |waiting for `megapairs run`/)));
  return ws;
}

export async function stop(ws: Proc[]): Promise<void> {
  for (const w of ws) if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGTERM');
  await Promise.all(ws.map((w) => w.exited));
}

/** The first of the live workers to print a match from now on, e.g. starting a given unit. */
export function firstTo(ws: Proc[], re: RegExp): Promise<{ w: Proc; m: RegExpMatchArray }> {
  const live = ws.filter((w) => w.child.exitCode === null && w.child.signalCode === null);
  return Promise.race(live.map((w) => w.waitFor(re, w.out().length).then((m) => ({ w, m }))));
}
