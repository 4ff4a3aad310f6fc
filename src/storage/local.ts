// Storage on the local filesystem. Writes go to a temp file in the same folder and are renamed into
// place, so a killed process leaves either the old state or the whole new file.
import { createReadStream } from 'node:fs';
import { copyFile, mkdir, open, readFile, readdir, rename, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { threadId } from 'node:worker_threads';
import type { Readable } from 'node:stream';
import { checkedKey, pathUnder } from './safe-key.ts';
import { NotFoundError, ObjectChangedError, ShortReadError, type ObjectVersion, type Storage } from './storage.ts';

let tempCounter = 0;
// The temp names writeAtomically uses: never listed as keys.
const TEMP_NAME = /\.tmp-\d+-\d+-\d+$/;

/**
 * Fills a temp file beside `target`, then renames it into place: a killed process leaves the old
 * state or the whole new file, never part of one. LocalStorage writes and the download cache
 * (s3 localPath copies) both go through it.
 */
export async function writeAtomically(target: string, fill: (tmp: string) => Promise<void>): Promise<void> {
  // pid, thread and counter: unique even for two threads of one process writing the same file.
  const tmp = `${target}.tmp-${process.pid}-${threadId}-${++tempCounter}`;
  try {
    // The folder is made only when the write finds it missing: most writes go to one that exists
    // (the request cache writes hundreds a second), and a mkdir each costs a syscall round trip.
    await fill(tmp).catch(async (err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
      await mkdir(path.dirname(target), { recursive: true });
      await fill(tmp);
    });
    await rename(tmp, target);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

/** A file's version: its size and modification time to the ms (copies that keep mtimes, rsync -a or cp -p, keep it). */
const fileVersion = (st: { size: number; mtimeMs: number }): ObjectVersion => ({ size: st.size, version: `${st.size}-${Math.floor(st.mtimeMs)}` });

export class LocalStorage implements Storage {
  constructor(readonly root: string) {}

  /** For messages: the key as joined, unchecked. */
  uri(key: string): string {
    return path.join(this.root, key);
  }

  /** The file a key names; a key that could leave the root is refused (safe-key.ts). */
  private file(key: string): string {
    return pathUnder(this.root, key);
  }

  private async guard<T>(key: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError(this.uri(key));
      throw err;
    }
  }

  read(key: string): Promise<Buffer> {
    return this.guard(key, () => readFile(this.file(key)));
  }

  readRange(key: string, offset: number, length: number, version?: string): Promise<Buffer> {
    return this.guard(key, async () => {
      const fh = await open(this.file(key), 'r');
      try {
        if (version !== undefined) {
          const found = fileVersion(await fh.stat());
          if (found.version !== version) throw new ObjectChangedError(this.uri(key), version, found.version);
        }
        const buf = Buffer.alloc(length);
        const { bytesRead } = await fh.read(buf, 0, length, offset);
        if (bytesRead < length) throw new ShortReadError(this.uri(key), bytesRead, length, offset);
        return buf;
      } finally {
        await fh.close();
      }
    });
  }

  readStream(key: string): Readable {
    return createReadStream(this.file(key));
  }

  stat(key: string): Promise<ObjectVersion> {
    return this.guard(key, async () => fileVersion(await stat(this.file(key))));
  }

  async *listVersions(prefix: string): AsyncIterable<{ key: string } & ObjectVersion> {
    // Listed keys are names this walk found under the root: stat them as found, so an unsafe name
    // (a backslash in a folder's name) is listed for its reader to refuse, not thrown here.
    for await (const key of this.list(prefix)) yield { key, ...fileVersion(await stat(path.join(this.root, key))) };
  }

  async write(key: string, data: Buffer | string): Promise<void> {
    return writeAtomically(this.file(key), (tmp) => writeFile(tmp, data));
  }

  async writeFromFile(key: string, localPath: string): Promise<void> {
    return writeAtomically(this.file(key), (tmp) => copyFile(localPath, tmp));
  }

  async exists(key: string): Promise<boolean> {
    const file = this.file(key);
    try {
      return (await stat(file)).isFile();
    } catch {
      return false;
    }
  }

  /** Removes the file, then the folders it leaves empty (an S3 prefix has no folders to leave). */
  async delete(key: string): Promise<void> {
    await rm(this.file(key), { force: true });
    for (let dir = path.posix.dirname(key); dir !== '.' && dir !== '/'; dir = path.posix.dirname(dir)) {
      try {
        await rmdir(path.join(this.root, dir));
      } catch {
        break; // not empty (or already gone): the folders above are not empty either
      }
    }
  }

  async *list(prefix: string): AsyncIterable<string> {
    // The prefix may end inside a file name ("catalog/part-"): list its folder and filter.
    const dir = checkedKey(this.root, prefix).slice(0, prefix.lastIndexOf('/') + 1);
    const keys: string[] = [];
    const walk = async (rel: string): Promise<void> => {
      let entries;
      try {
        entries = await readdir(path.join(this.root, rel), { withFileTypes: true });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
        throw err;
      }
      for (const e of entries) {
        const key = rel + e.name;
        if (e.isDirectory()) await walk(key + '/');
        else if (e.isFile() && key.startsWith(prefix) && !TEMP_NAME.test(key)) keys.push(key);
      }
    };
    await walk(dir);
    keys.sort();
    yield* keys;
  }

  async localPath(key: string): Promise<string> {
    const p = this.file(key);
    if (!(await this.exists(key))) throw new NotFoundError(this.uri(key));
    return p;
  }
}
