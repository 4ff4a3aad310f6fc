#!/usr/bin/env node
// In a development checkout (src/ beside this file and tsx installed) the TypeScript sources run
// through tsx, so no build step is needed and a stale dist/ is never used. Anywhere else (a
// production install, `npm ci --omit=dev`, the images) the compiled JavaScript in dist/ runs.
import { existsSync } from 'node:fs';
import os from 'node:os';

// sharp decodes on libuv's thread pool, one per process and 4 threads unless told otherwise, which
// every decode thread shares: with more decode threads than that (encoders.decode_threads is one
// per core) images would wait for a pool thread. Set before anything uses the pool.
process.env.UV_THREADPOOL_SIZE ??= String(Math.max(4, os.availableParallelism()));

const sources = new URL('../src/cli/main.ts', import.meta.url);
const compiled = new URL('../dist/src/cli/main.js', import.meta.url);

function tsxInstalled() {
  try {
    import.meta.resolve('tsx/esm/api');
    return true;
  } catch {
    return false;
  }
}

let entry = compiled;
if (existsSync(sources) && tsxInstalled()) {
  const { register } = await import('tsx/esm/api');
  register();
  entry = sources;
} else if (!existsSync(compiled)) {
  process.stderr.write('megapairs: dist/ is missing: run `npm run build` (or install the dev dependencies to run the sources through tsx)\n');
  process.exit(1);
}
const { main } = await import(entry.href);
process.exit(await main(process.argv.slice(2)));
