// Storage under an s3://bucket/prefix location, on AWS or any S3-compatible store. Every call is
// retried with backoff and jitter on throttling, 5xx and dropped connections (retry.ts); whole
// reads, ranged reads and streams check they got every byte. Writes are one PUT, or a multipart
// upload for files over one part: either way the object appears whole or not at all.
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { DownloadCache } from './download-cache.ts';
import { withRetry, type RetryPolicy } from './retry.ts';
import { IncompleteBodyError, storageError } from './s3-errors.ts';
import { parseS3Uri, type ObjectRef } from './s3-location.ts';
import { uploadMultipart } from './s3-multipart.ts';
import { resumableReadStream } from './s3-read-stream.ts';
import { checkedKey } from './safe-key.ts';
import { NotFoundError, ObjectChangedError, ShortReadError, type ObjectVersion, type Storage } from './storage.ts';

export interface S3StorageOptions {
  client: S3Client;
  /** Local folder for localPath() copies. */
  cacheDir: string;
  retry: RetryPolicy;
  /** Files over this many bytes go up as multipart uploads of parts this size. */
  partSize: number;
  uploadConcurrency: number;
  /** Names the store in the cache path, so two endpoints' same-named buckets do not mix. */
  endpoint?: string;
}

// So browsers and dataset viewers show exported files for what they are.
const CONTENT_TYPES: Record<string, string> = { '.jpg': 'image/jpeg', '.json': 'application/json', '.jsonl': 'application/x-ndjson' };
const contentType = (key: string) => CONTENT_TYPES[path.posix.extname(key).toLowerCase()];

async function collect(body: AsyncIterable<Uint8Array>, uri: string, expected: number | undefined): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let got = 0;
  for await (const c of body) {
    chunks.push(Buffer.from(c.buffer, c.byteOffset, c.byteLength));
    got += c.byteLength;
  }
  if (expected !== undefined && got !== expected) throw new IncompleteBodyError(uri, got, expected);
  return chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, got);
}

export class S3Storage implements Storage {
  readonly bucket: string;
  readonly prefix: string;
  private readonly client: S3Client;
  private readonly retry: RetryPolicy;
  private readonly partSize: number;
  private readonly uploadConcurrency: number;
  private readonly cache: DownloadCache;
  /** localPath() results of this process: complete artifacts never change, so no second HEAD. */
  private readonly local = new Map<string, Promise<string>>();

  constructor(
    readonly root: string,
    opts: S3StorageOptions,
  ) {
    ({ bucket: this.bucket, prefix: this.prefix } = parseS3Uri(root));
    ({ client: this.client, retry: this.retry, partSize: this.partSize, uploadConcurrency: this.uploadConcurrency } = opts);
    const store = opts.endpoint ? opts.endpoint.replace(/^[a-z]+:\/\//i, '').replace(/[^A-Za-z0-9.-]+/g, '_') : 'aws';
    this.cache = new DownloadCache(path.join(opts.cacheDir, 's3', store, this.bucket));
  }

  uri(key: string): string {
    return `s3://${this.bucket}/${this.prefix}${key}`;
  }

  /** The object's key in the bucket; a key that could leave the prefix (once synced to disk) is refused (safe-key.ts). */
  private objectKey(key: string): string {
    return this.prefix + checkedKey(this.root, key);
  }

  private ref(key: string): ObjectRef {
    return { client: this.client, bucket: this.bucket, key: this.objectKey(key), uri: this.uri(key) };
  }

  /** `fn` with retries; errors come out as the storage interface's (NotFoundError, uri in the message). */
  private async call<T>(what: string, key: string, fn: () => Promise<T>): Promise<T> {
    checkedKey(this.root, key); // refused before the first try, never retried
    try {
      return await withRetry(`${what} ${this.uri(key)}`, this.retry, fn);
    } catch (err) {
      throw storageError(err, this.uri(key));
    }
  }

  read(key: string): Promise<Buffer> {
    return this.call('read', key, async () => {
      const res = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) }));
      return collect(res.Body as AsyncIterable<Uint8Array>, this.uri(key), res.ContentLength);
    });
  }

  readRange(key: string, offset: number, length: number, version?: string): Promise<Buffer> {
    if (length === 0) return Promise.resolve(Buffer.alloc(0));
    return this.call('ranged read of', key, async () => {
      const res = await this.client
        .send(new GetObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key), Range: `bytes=${offset}-${offset + length - 1}`, IfMatch: version }))
        .catch((err: Error & { $metadata?: { httpStatusCode?: number } }) => {
          // If-Match the recorded ETag: the store refuses (412) when the object was replaced since.
          if (version !== undefined && err.$metadata?.httpStatusCode === 412) throw new ObjectChangedError(this.uri(key), version, 'another ETag');
          throw err;
        });
      // A store that ignores If-Match (s3rver does) still names the version it served.
      if (version !== undefined && res.ETag !== undefined && res.ETag !== version) {
        (res.Body as Readable | undefined)?.destroy();
        throw new ObjectChangedError(this.uri(key), version, res.ETag);
      }
      // Some stores widen a range (s3rver serves "bytes=0-0" whole) or ignore it (a 200 with the
      // whole object): keep the asked-for bytes when the answer starts where asked, else refuse.
      const start = res.ContentRange ? Number(/bytes (\d+)-/.exec(res.ContentRange)?.[1]) : 0;
      if (start !== offset) {
        (res.Body as Readable | undefined)?.destroy();
        throw new Error(`${this.uri(key)}: asked for bytes from ${offset}, the store answered ${res.ContentRange ?? 'the whole object'}`);
      }
      const buf = await collect(res.Body as AsyncIterable<Uint8Array>, this.uri(key), res.ContentLength);
      if (buf.length < length) throw new ShortReadError(this.uri(key), buf.length, length, offset);
      return buf.length > length ? buf.subarray(0, length) : buf;
    });
  }

  readStream(key: string): Readable {
    return resumableReadStream(this.ref(key), this.retry);
  }

  async write(key: string, data: Buffer | string): Promise<void> {
    this.local.delete(key);
    const body = typeof data === 'string' ? Buffer.from(data) : data;
    await this.call('write', key, () =>
      this.client.send(
        new PutObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key), Body: body, ContentLength: body.length, ContentType: contentType(key) }),
      ),
    );
  }

  async writeFromFile(key: string, localPath: string): Promise<void> {
    this.local.delete(key);
    const { size } = await stat(localPath);
    if (size <= this.partSize) return this.write(key, await readFile(localPath));
    try {
      await uploadMultipart(this.ref(key), localPath, size, {
        partSize: this.partSize,
        concurrency: this.uploadConcurrency,
        retry: this.retry,
        contentType: contentType(key),
      });
    } catch (err) {
      throw storageError(err, this.uri(key));
    }
  }

  private head(key: string) {
    return this.call('head', key, () => this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) })));
  }

  async delete(key: string): Promise<void> {
    await this.call('delete', key, () => this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) })));
  }

  async exists(key: string): Promise<boolean> {
    try {
      await this.head(key);
      return true;
    } catch (err) {
      if (err instanceof NotFoundError) return false; // call() turned the store's 404 into it
      throw err;
    }
  }

  async stat(key: string): Promise<ObjectVersion> {
    const head = await this.head(key);
    return { size: head.ContentLength ?? 0, version: head.ETag ?? `${head.LastModified?.toISOString()}-${head.ContentLength}` };
  }

  async *listVersions(prefix: string): AsyncIterable<{ key: string } & ObjectVersion> {
    let token: string | undefined;
    do {
      const page = await this.call('list', prefix, () =>
        this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.objectKey(prefix), ContinuationToken: token })),
      );
      for (const o of page.Contents ?? [])
        if (o.Key && !o.Key.endsWith('/'))
          yield { key: o.Key.slice(this.prefix.length), size: o.Size ?? 0, version: o.ETag ?? `${o.LastModified?.toISOString()}-${o.Size}` };
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  async *list(prefix: string): AsyncIterable<string> {
    for await (const o of this.listVersions(prefix)) yield o.key;
  }

  localPath(key: string): Promise<string> {
    let p = this.local.get(key);
    if (!p) {
      p = this.download(key);
      this.local.set(key, p);
      p.catch(() => this.local.delete(key));
    }
    return p;
  }

  private async download(key: string): Promise<string> {
    const head = await this.head(key);
    const version = head.ETag ?? `${head.LastModified?.toISOString()}-${head.ContentLength}`;
    // If-Match the HEAD's ETag: an object replaced since is refused, not cached under the old version.
    return this.cache.file(this.objectKey(key), version, head.ContentLength, () => resumableReadStream(this.ref(key), this.retry, head.ETag));
  }
}
