// One interface over every place bytes live (a local folder or an S3 prefix), so stages
// never know which one they write to. Keys are '/'-separated paths relative to the storage root.
import type { Readable } from 'node:stream';

export interface Storage {
  /** The root as the user wrote it (a folder path or s3://bucket/prefix), for messages. */
  readonly root: string;
  /** The full location of a key, for messages and for records that point at bytes. */
  uri(key: string): string;
  read(key: string): Promise<Buffer>;
  /**
   * `length` bytes from `offset`: one ranged read, not the whole object. With `version` (from
   * stat or listVersions), bytes of any other version are refused with ObjectChangedError.
   */
  readRange(key: string, offset: number, length: number, version?: string): Promise<Buffer>;
  /** The object's size and version: what tells its bytes apart from another object's under the same name. */
  stat(key: string): Promise<ObjectVersion>;
  /** Like list, with each object's size and version (one listing on S3, no request per object). */
  listVersions(prefix: string): AsyncIterable<{ key: string } & ObjectVersion>;
  readStream(key: string): Readable;
  /** Writes the whole object or nothing: a reader never sees a partial artifact. */
  write(key: string, data: Buffer | string): Promise<void>;
  /** Like write, from a local file (large artifacts built on disk first). */
  writeFromFile(key: string, localPath: string): Promise<void>;
  exists(key: string): Promise<boolean>;
  /** Removes the object; removing one that is absent is not an error. */
  delete(key: string): Promise<void>;
  /** Keys under a prefix, in lexical order. */
  list(prefix: string): AsyncIterable<string>;
  /** A local path holding the object's bytes: the file itself when local, a cached download otherwise. */
  localPath(key: string): Promise<string>;
}

/** An object's identity in storage: its size and its version (S3: the ETag; a file: size and mtime). */
export interface ObjectVersion {
  size: number;
  version: string;
}

/** The object holds other bytes than the version asked for: replaced or rewritten since it was read. */
export class ObjectChangedError extends Error {
  constructor(where: string, expected: string, found: string) {
    super(`${where} changed: its version is ${found}, not ${expected} as recorded (replaced or rewritten since)`);
    this.name = 'ObjectChangedError';
  }
}

export class NotFoundError extends Error {
  constructor(readonly where: string) {
    super(`not found: ${where}`);
    this.name = 'NotFoundError';
  }
}

/** A ranged read that found fewer bytes than the catalog recorded: the object changed or was cut. */
export class ShortReadError extends Error {
  constructor(where: string, got: number, wanted: number, offset: number) {
    super(`short read of ${where}: ${got} of ${wanted} bytes at ${offset}`);
    this.name = 'ShortReadError';
  }
}
