// A marker: a small object whose text names the provenance key that wrote an artifact kept under a
// plain name (the product under the output prefix), so a stage can tell its own output from an
// earlier config's.
import { NotFoundError, type Storage } from '../storage/storage.ts';

export async function readMarker(storage: Storage, key: string): Promise<string | undefined> {
  try {
    return (await storage.read(key)).toString('utf8').trim();
  } catch (err) {
    if (err instanceof NotFoundError) return undefined;
    throw err;
  }
}
