// A whole-object read as a stream that survives dropped connections: when the body fails or ends
// early, it asks again from the byte where it stopped (a ranged GET, If-Match the first response's
// ETag so a replaced object fails instead of splicing two versions). Memory: one chunk in flight.
import { Readable } from 'node:stream';
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { backoffDelay, isTransientError, RetriesExhaustedError, type RetryPolicy } from './retry.ts';
import { IncompleteBodyError, storageError } from './s3-errors.ts';

export interface ObjectRef {
  client: S3Client;
  bucket: string;
  key: string;
  /** s3://bucket/key, for messages. */
  uri: string;
}

/** Total object size from a GET's Content-Range ("bytes a-b/size") or, unranged, its Content-Length. */
function objectSize(contentRange: string | undefined, contentLength: number | undefined, from: number): number | undefined {
  const total = contentRange && /\/(\d+)$/.exec(contentRange)?.[1];
  if (total) return Number(total);
  return contentLength === undefined ? undefined : from + contentLength;
}

async function* resumableChunks(ref: ObjectRef, policy: RetryPolicy): AsyncGenerator<Buffer> {
  let position = 0;
  let size: number | undefined;
  let etag: string | undefined;
  let failures = 0;
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
      if (!isTransientError(err)) throw storageError(err, ref.uri);
      // Consecutive failures count; a failure after progress starts the count again.
      failures = position > before ? 1 : failures + 1;
      if (failures >= policy.attempts) throw new RetriesExhaustedError(`read ${ref.uri} at byte ${position}`, failures, err as Error);
      const delay = backoffDelay(policy, failures - 1);
      if (delay > 0) await new Promise((r) => setTimeout(r, delay));
    }
  }
}

export function resumableReadStream(ref: ObjectRef, policy: RetryPolicy): Readable {
  return Readable.from(resumableChunks(ref, policy), { objectMode: false });
}
