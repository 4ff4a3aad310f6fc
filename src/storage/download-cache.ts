// Local copies of remote objects for readers that need a file path (hnswlib, parquetjs-lite). A copy
// is named by the object's key and version (its ETag), so a process, a rerun or another worker on
// the same machine finds it instead of downloading again, and a replaced object never reads as the
// old one. Downloads go to a temp file renamed into place: a killed download leaves no bad copy.
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

let tempCounter = 0;

export class DownloadCache {
  constructor(readonly dir: string) {}

  /** The cache file for a version of `name` ('/'-separated, as in the bucket). */
  fileFor(name: string, version: string): string {
    const tag = createHash('sha256').update(version).digest('hex').slice(0, 16);
    const safe = name.split('/').filter((p) => p && p !== '.' && p !== '..').join(path.sep);
    return path.join(this.dir, `${safe}.v-${tag}`);
  }

  /** The cached file when it holds `size` bytes, else undefined. */
  async lookup(name: string, version: string, size: number | undefined): Promise<string | undefined> {
    const file = this.fileFor(name, version);
    try {
      const s = await stat(file);
      return size === undefined || s.size === size ? file : undefined;
    } catch {
      return undefined;
    }
  }

  /** Streams `open()` into the cache file for this version; checks the size when known. */
  async fill(name: string, version: string, size: number | undefined, open: () => Readable): Promise<string> {
    const file = this.fileFor(name, version);
    await mkdir(path.dirname(file), { recursive: true });
    const tmp = `${file}.tmp-${process.pid}-${++tempCounter}`;
    try {
      await pipeline(open(), createWriteStream(tmp));
      const got = (await stat(tmp)).size;
      if (size !== undefined && got !== size) throw new Error(`download of ${name} gave ${got} of ${size} bytes`);
      await rename(tmp, file);
      return file;
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
  }
}
