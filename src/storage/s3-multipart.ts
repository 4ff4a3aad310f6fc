// A large local file up to S3 as one multipart upload: parts read from the file at their offsets
// (memory: part size x parts in flight), each part retried on its own, and the object appears only
// when CompleteMultipartUpload succeeds, so readers never see a partial artifact. A failed upload
// is aborted so its parts do not linger (and cost) in the bucket.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  HeadObjectCommand,
  UploadPartCommand,
  type CompletedPart,
} from '@aws-sdk/client-s3';
import { mapPool } from '../util/pool.ts';
import { withRetry, type RetryPolicy } from './retry.ts';
import type { ObjectRef } from './s3-location.ts';

export interface MultipartOptions {
  partSize: number;
  concurrency: number;
  retry: RetryPolicy;
  contentType?: string;
}

const md5 = () => createHash('md5');
const unquote = (etag: string | undefined) => etag?.replace(/"/g, '');

/**
 * Whether the object holds exactly this upload: AWS's ETag for a multipart object is the MD5 of the
 * parts' MD5s and "-<parts>", some stores' the MD5 of the whole; either must match.
 */
async function holdsUpload(target: ObjectRef, file: string, size: number, parts: CompletedPart[]): Promise<boolean> {
  const head = await target.client.send(new HeadObjectCommand({ Bucket: target.bucket, Key: target.key })).catch(() => undefined);
  if (!head || head.ContentLength !== size) return false;
  const etag = unquote(head.ETag);
  const ofParts = md5();
  for (const p of parts) ofParts.update(Buffer.from(unquote(p.ETag) ?? '', 'hex'));
  if (etag === `${ofParts.digest('hex')}-${parts.length}`) return true;
  const whole = md5();
  for await (const chunk of createReadStream(file)) whole.update(chunk as Buffer);
  return etag === whole.digest('hex');
}

/** Uploads `file` (of `size` bytes) in parts. */
export async function uploadMultipart(target: ObjectRef, file: string, size: number, opts: MultipartOptions): Promise<void> {
  const { client, bucket, key, uri } = target;
  const created = await withRetry(`start multipart upload of ${uri}`, opts.retry, () =>
    client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key, ContentType: opts.contentType })),
  );
  const uploadId = created.UploadId!;
  const fh = await open(file, 'r');
  try {
    const count = Math.ceil(size / opts.partSize);
    const numbers = Array.from({ length: count }, (_, i) => i + 1);
    let failed = false; // once a part fails for good, start no more
    const parts = await mapPool(numbers, opts.concurrency, async (n): Promise<CompletedPart> => {
      if (failed) throw new Error('upload abandoned');
      try {
        const offset = (n - 1) * opts.partSize;
        const body = Buffer.alloc(Math.min(opts.partSize, size - offset));
        const { bytesRead } = await fh.read(body, 0, body.length, offset);
        if (bytesRead !== body.length) throw new Error(`${file} changed during upload: read ${bytesRead} of ${body.length} bytes at ${offset}`);
        const res = await withRetry(`upload part ${n}/${count} of ${uri}`, opts.retry, () =>
          client.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId: uploadId, PartNumber: n, Body: body, ContentLength: body.length })),
        );
        return { PartNumber: n, ETag: res.ETag };
      } catch (err) {
        failed = true;
        throw err;
      }
    });
    await withRetry(`complete multipart upload of ${uri}`, opts.retry, async (attempt) => {
      try {
        await client.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId, MultipartUpload: { Parts: parts } }));
      } catch (err) {
        // An earlier try may have completed the upload and lost its answer; then this one fails
        // (NoSuchUpload on AWS, other errors elsewhere). The object with our content means done.
        if (attempt > 0 && (await holdsUpload(target, file, size, parts))) return;
        throw err;
      }
    });
  } catch (err) {
    await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId })).catch(() => undefined);
    throw err;
  } finally {
    await fh.close();
  }
}
