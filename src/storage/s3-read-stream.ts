// A whole-object read as a stream that survives dropped connections: when the body fails or ends
// early, it asks again from the byte where it stopped (a ranged GET, If-Match the object's ETag so
// a replaced object fails instead of splicing two versions). Memory: one chunk in flight.
import { Readable } from 'node:stream';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { retryOrThrow, type RetryPolicy } from './retry.ts';
import { IncompleteBodyError, storageError } from './s3-errors.ts';
import type { ObjectRef } from './s3-location.ts';

/** Total object size from a GET's Content-Range ("bytes a-b/size") or, unranged, its Content-Length. */
function objectSize(contentRange: string | undefined, contentLength: number | undefined, from: number): number | undefined {
  const total = contentRange && /\/(\d+)$/.exec(contentRange)?.[1];
  if (total) return Number(total);
  return contentLength === undefined ? undefined : from + contentLength;
}

async function* resumableChunks(ref: ObjectRef, policy: RetryPolicy, etag: string | undefined): AsyncGenerator<Buffer> {
  let position = 0;
  let size: number | undefined;
  let attempt = 0; // consecutive failed attempts: one that made progress starts the count again
  for (;;) {
    const before = position;
    try {
      const res = await ref.client.send(
        new GetObjectCommand({ Bucket: ref.bucket, Key: ref.key, Range: position > 0 ? `bytes=${position}-` : undefined, IfMatch: etag }),
      );
      etag ??= res.ETag;
      size ??= objectSize(res.ContentRange, res.ContentLength, position);
      for await (const chunk of res.Body as AsyncIterable<Uint8Array>) {
        position += chunk.length;
        yield Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
      }
      if (size !== undefined && position < size) throw new IncompleteBodyError(ref.uri, position, size);
      return;
    } catch (err) {
      if (position > before) attempt = 0;
      try {
        await retryOrThrow(`read ${ref.uri} at byte ${position}`, policy, err, attempt++);
      } catch (final) {
        throw storageError(final, ref.uri);
      }
    }
  }
}

/** The object's bytes as a stream; `etag`, when known, pins the version from the first byte. */
export function resumableReadStream(ref: ObjectRef, policy: RetryPolicy, etag?: string): Readable {
  return Readable.from(resumableChunks(ref, policy, etag), { objectMode: false });
}
