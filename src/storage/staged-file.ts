// Artifacts built on local disk before they are stored: a library that writes to a path (Parquet,
// hnswlib) or lines streamed out (JSONL). Each gets a temp folder of its own, always removed, and
// is stored whole once complete.
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { pathUnder } from './safe-key.ts';
import type { Storage } from './storage.ts';

/** Runs `build` on a fresh local file named like `key`, then stores that file under `key`. */
export async function storeViaLocalFile<T>(storage: Storage, key: string, build: (file: string) => Promise<T>, tmpRoot: string = tmpdir()): Promise<T> {
  await mkdir(tmpRoot, { recursive: true });
  const dir = await mkdtemp(path.join(tmpRoot, 'megapairs-'));
  try {
    const file = pathUnder(dir, path.posix.basename(key));
    const result = await build(file);
    await storage.writeFromFile(key, file);
    return result;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Writes the chunks to `file` in order, with backpressure; resolves once the file is complete. */
export function writeChunks(file: string, chunks: AsyncIterable<string | Buffer>): Promise<void> {
  return pipeline(Readable.from(chunks), createWriteStream(file));
}
