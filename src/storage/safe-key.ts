// Keys are relative '/'-separated names under a storage root. Some come from outside (tar member
// names, S3 listings, the catalog those fill): a `..` segment, a leading '/', a backslash (a
// separator on Windows and to some tools) or a control character must never become a path. Every
// storage operation joins its key through pathUnder or checkedKey, so no caller can leave its root.
import path from 'node:path';

/** Why `key` is not a plain relative name, in words for a message; undefined when it is one. */
export function unsafeKeyProblem(key: string): string | undefined {
  if (key.startsWith('/')) return 'starts with "/"';
  if (key.includes('\\')) return 'holds a backslash';
  // Cc: C0 controls, DEL and C1 controls. NUL cuts C strings, newlines forge log and ledger lines.
  if (/\p{Cc}/u.test(key)) return 'holds a control character';
  if (key.split('/').includes('..')) return 'has a ".." segment';
  return undefined;
}

/** A name as it can be shown and stored in a one-line record: control characters and backslashes escaped as JSON does. */
export const printableKey = (key: string): string => JSON.stringify(key).slice(1, -1);

export class UnsafeKeyError extends Error {
  constructor(
    readonly root: string,
    readonly key: string,
    problem: string,
  ) {
    super(`refused key "${printableKey(key)}" under ${root}: it ${problem}`);
    this.name = 'UnsafeKeyError';
  }
}

/** `key` when it is a plain relative name; throws UnsafeKeyError naming `root` otherwise. */
export function checkedKey(root: string, key: string): string {
  const problem = unsafeKeyProblem(key);
  if (problem) throw new UnsafeKeyError(root, key, problem);
  return key;
}

/** The local path of `key` under the folder `root`; throws UnsafeKeyError for a key that could leave it. */
export function pathUnder(root: string, key: string): string {
  checkedKey(root, key);
  const base = path.resolve(root);
  const full = path.resolve(base, key);
  // Belt and braces: whatever the checks above miss, the joined path must still lie under the root.
  if (full !== base && !full.startsWith(base.endsWith(path.sep) ? base : base + path.sep)) {
    throw new UnsafeKeyError(root, key, 'resolves outside the root');
  }
  return full;
}
