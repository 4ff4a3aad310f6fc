// Content digests of the files a config names (ONNX models, tokenizers), so an artifact is keyed
// by the model's bytes, not by the path it is reached by: a node that mounts the same model
// elsewhere gets the same key, and a model replaced in place gets a new one.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';

// Hashing a 1 GB model takes seconds; a process asks for each file several times (keys, checks).
const known = new Map<string, Promise<string>>();

/** sha256 of the file's bytes (hex, 16 digits), read once per process for each path, size and mtime. */
export async function fileDigest(file: string, key: string): Promise<string> {
  let s;
  try {
    s = await stat(file);
  } catch (err) {
    throw new Error(`${key}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, { cause: err });
  }
  const id = `${file}\0${s.size}\0${s.mtimeMs}`;
  let p = known.get(id);
  if (!p) {
    p = new Promise<string>((resolve, reject) => {
      const h = createHash('sha256');
      createReadStream(file)
        .on('data', (c) => h.update(c))
        .on('error', reject)
        .on('end', () => resolve(h.digest('hex').slice(0, 16)));
    });
    known.set(id, p);
    p.catch(() => known.delete(id));
  }
  return p;
}

/** What identifies a model or tokenizer setting: a built-in's name as is, a file's content digest. */
export async function modelIdentity(setting: string, key: string): Promise<string> {
  if (setting.startsWith('builtin:')) return setting;
  return `sha256:${await fileDigest(setting, key)}`;
}
