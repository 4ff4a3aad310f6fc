// Storage compared by identity, not by the path or URL it is reached by: the first `megapairs run`
// writes a marker with a random id into its work and output storage, and a worker whose config
// reaches a storage holding the same id is using the same storage, however it is mounted.
import { randomUUID } from 'node:crypto';
import type { Storage } from '../storage/storage.ts';
import { NotFoundError } from '../storage/storage.ts';
import { unkeyedLayout } from '../core/layout.ts';

const MARKER = unkeyedLayout.storageIdentity();

export async function readStorageId(storage: Storage): Promise<string | undefined> {
  try {
    return (JSON.parse((await storage.read(MARKER)).toString('utf8')) as { id: string }).id;
  } catch (err) {
    if (err instanceof NotFoundError) return undefined;
    throw err;
  }
}

/** The storage's id, writing a new marker when it has none. */
export async function ensureStorageId(storage: Storage): Promise<string> {
  const id = await readStorageId(storage);
  if (id) return id;
  const fresh = randomUUID();
  await storage.write(MARKER, JSON.stringify({ id: fresh, created: new Date().toISOString() }) + '\n');
  return (await readStorageId(storage)) ?? fresh;
}

export const storageMarker = (storage: Storage) => storage.uri(MARKER);
