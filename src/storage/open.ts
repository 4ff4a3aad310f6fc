// Picks the storage for a location string: s3://bucket/prefix for S3 and S3-compatible stores
// (client settings from the config's `s3:` section), anything without a scheme for a local folder.
import { homedir } from 'node:os';
import path from 'node:path';
import { configSchema, type S3Settings } from '../config/schema.ts';
import { LocalStorage } from './local.ts';
import { isUrl } from '../config/location.ts';
import { S3Storage } from './s3.ts';
import { s3Client } from './s3-client.ts';
import { isS3Uri } from './s3-location.ts';
import type { Storage } from './storage.ts';

export interface StorageOptions {
  /** The config's `s3:` section; the schema's defaults for what it leaves out. */
  s3?: Partial<S3Settings>;
  /** Where remote objects are copied for localPath(). */
  cacheDir?: string;
}

const MiB = 1024 * 1024;

export function openStorage(location: string, opts: StorageOptions = {}): Storage {
  if (isS3Uri(location)) {
    // The schema is the one place S3 defaults live; a parsed config section passes through as is.
    const s3 = configSchema.shape.s3.parse(opts.s3 ?? {});
    return new S3Storage(location, {
      client: s3Client(s3),
      cacheDir: opts.cacheDir ?? path.join(homedir(), '.cache', 'megapairs'),
      retry: { attempts: s3.max_attempts, baseMs: s3.retry_base_ms, maxMs: s3.retry_max_ms },
      partSize: s3.part_size_mib * MiB,
      uploadConcurrency: s3.upload_concurrency,
      endpoint: s3.endpoint,
    });
  }
  if (isUrl(location)) {
    throw new Error(`${location}: unsupported location scheme (use a local folder path or s3://bucket/prefix)`);
  }
  return new LocalStorage(location);
}
