// One interface over every place bytes live (a local folder or an S3 prefix), so stages
// never know which one they write to. Keys are '/'-separated paths relative to the storage root.
import type { Readable } from 'node:stream';

export interface Storage {
  /** The root as the user wrote it (a folder path or s3://bucket/prefix), for messages. */
  readonly root: string;
  /** The full location of a key, for messages and for records that point at bytes. */
  uri(key: string): string;
  read(key: string): Promise<Buffer>;
  /** `length` bytes from `offset`: one ranged read, not the whole object. */
  readRange(key: string, offset: number, length: number): Promise<Buffer>;
  readStream(key: string): Readable;
  /** Writes the whole object or nothing: a reader never sees a partial artifact. */
  write(key: string, data: Buffer | string): Promise<void>;
  /** Like write, from a local file (large artifacts built on disk first). */
  writeFromFile(key: string, localPath: string): Promise<void>;
  exists(key: string): Promise<boolean>;
  /** Removes the object; removing one that is absent is not an error. */
  delete(key: string): Promise<void>;
  /**
   * The object's size and a version that changes when its bytes are replaced (the file's mtime,
   * the S3 ETag): what says a shard is the one a catalog part was made from, without reading it.
   */
  stat(key: string): Promise<ObjectVersion>;
  /** Keys under a prefix, in lexical order. */
  list(prefix: string): AsyncIterable<string>;
  /** A local path holding the object's bytes: the file itself when local, a cached download otherwise. */
  localPath(key: string): Promise<string>;
}

export interface ObjectVersion {
  size: number;
  version: string;
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
