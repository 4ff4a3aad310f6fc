// Picks the storage for a location string: s3://bucket/prefix for S3 and S3-compatible stores
// (client settings from the config's `s3:` section), anything without a scheme for a local folder.
import { homedir } from 'node:os';
import path from 'node:path';
import type { S3Settings } from '../config/schema.ts';
import { LocalStorage } from './local.ts';
import { S3Storage } from './s3.ts';
import { s3Client } from './s3-client.ts';
import { isS3Uri } from './s3-location.ts';
import type { Storage } from './storage.ts';

export interface StorageOptions {
  /** The config's `s3:` section; S3 defaults when absent. */
  s3?: Partial<S3Settings>;
  /** Where remote objects are copied for localPath(). */
  cacheDir?: string;
}

const MiB = 1024 * 1024;

export function openStorage(location: string, opts: StorageOptions = {}): Storage {
  if (isS3Uri(location)) {
    const s3 = opts.s3 ?? {};
    return new S3Storage(location, {
      client: s3Client({
        endpoint: s3.endpoint,
        region: s3.region,
        force_path_style: s3.force_path_style ?? false,
        socket_timeout_ms: s3.socket_timeout_ms ?? 60_000,
      }),
      cacheDir: opts.cacheDir ?? path.join(homedir(), '.cache', 'megapairs'),
      retry: { attempts: s3.max_attempts ?? 10, baseMs: s3.retry_base_ms ?? 100, maxMs: s3.retry_max_ms ?? 20_000 },
      partSize: (s3.part_size_mib ?? 8) * MiB,
      uploadConcurrency: s3.upload_concurrency ?? 4,
      endpoint: s3.endpoint,
    });
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(location)) {
    throw new Error(`${location}: unsupported location scheme (use a local folder path or s3://bucket/prefix)`);
  }
  return new LocalStorage(location);
}
