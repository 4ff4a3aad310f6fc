// s3://bucket/prefix locations: the bucket, and the key prefix (no leading slash, '/'-terminated
// unless empty) that every storage key is appended to; and one object of such a location, as the
// helpers that read and write it (s3-read-stream.ts, s3-multipart.ts) take it.
import type { S3Client } from '@aws-sdk/client-s3';

export interface S3Location {
  bucket: string;
  prefix: string;
}

export interface ObjectRef {
  client: S3Client;
  bucket: string;
  key: string;
  /** s3://bucket/key, for messages. */
  uri: string;
}

export const isS3Uri = (location: string) => /^s3:\/\//i.test(location);

export function parseS3Uri(location: string): S3Location {
  const m = /^s3:\/\/([^/]+)\/?(.*)$/i.exec(location);
  if (!m?.[1]) throw new Error(`${location}: not an s3://bucket/prefix location`);
  const bucket = m[1];
  // S3 bucket names: 3-63 of lowercase letters, digits, '.', '-'. Underscores appear in old buckets.
  if (!/^[a-z0-9][a-z0-9._-]{1,62}$/.test(bucket)) throw new Error(`${location}: "${bucket}" is not a valid bucket name`);
  const rest = m[2].replace(/^\/+/, '');
  return { bucket, prefix: rest && !rest.endsWith('/') ? `${rest}/` : rest };
}
