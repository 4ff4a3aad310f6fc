// Turning SDK errors into the storage interface's: a missing object is NotFoundError naming the
// s3:// location, whatever the store calls it (NoSuchKey on GET, a bare 404 NotFound on HEAD).
import { NotFoundError } from './storage.ts';

type SdkError = Error & { $metadata?: { httpStatusCode?: number } };

function isMissing(err: unknown): boolean {
  const e = err as SdkError;
  return e?.name === 'NoSuchKey' || e?.name === 'NotFound' || e?.$metadata?.httpStatusCode === 404;
}

/** Rethrows a missing-object error as NotFoundError(uri); other errors gain the uri in their message. */
export function storageError(err: unknown, uri: string): Error {
  if (isMissing(err)) return new NotFoundError(uri);
  const e = err as Error;
  if (e instanceof Error && !e.message.includes(uri)) e.message = `${uri}: ${e.message || e.name}`;
  return e;
}

/** A body that ended before its Content-Length: retried like a dropped connection. */
export class IncompleteBodyError extends Error {
  constructor(uri: string, got: number, expected: number) {
    super(`${uri}: response body ended after ${got} of ${expected} bytes`);
    this.name = 'IncompleteBody';
  }
}
