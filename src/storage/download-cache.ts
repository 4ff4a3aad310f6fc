// Local copies of remote objects for readers that need a file path (hnswlib, parquetjs-lite). A copy
// is named by the object's key and version (its ETag), so a process, a rerun or another worker on
// the same machine finds it instead of downloading again, and a replaced object never reads as the
// old one. Downloads are atomic writes (temp file, then rename): a killed download leaves no bad copy.
import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { writeAtomically } from './local.ts';

const sizeOf = (file: string) =>
  stat(file).then(
    (s) => s.size,
    () => undefined,
  );

export class DownloadCache {
  constructor(private readonly dir: string) {}

  /**
   * The local copy of this version of `name` ('/'-separated, as in the bucket): the cached file
   * when it is whole, else streamed from `open()` first. `size`, when known, is checked.
   */
  async file(name: string, version: string, size: number | undefined, open: () => Readable): Promise<string> {
    const tag = createHash('sha256').update(version).digest('hex').slice(0, 16);
    const safe = name
      .split('/')
      .filter((p) => p && p !== '.' && p !== '..')
      .join(path.sep);
    const file = path.join(this.dir, `${safe}.v-${tag}`);
    const cached = await sizeOf(file);
    if (cached !== undefined && (size === undefined || cached === size)) return file;
    await mkdir(path.dirname(file), { recursive: true }); // before the download starts, not on its failure
    await writeAtomically(file, async (tmp) => {
      await pipeline(open(), createWriteStream(tmp));
      const got = await sizeOf(tmp);
      if (size !== undefined && got !== size) throw new Error(`download of ${name} gave ${got} of ${size} bytes`);
    });
    return file;
  }
}
