// s3://bucket/prefix locations: the bucket, and the key prefix (no leading slash, '/'-terminated
// unless empty) that every storage key is appended to.

export interface S3Location {
  bucket: string;
  prefix: string;
}

export const isS3Uri = (location: string) => /^s3:\/\//i.test(location);

export function parseS3Uri(location: string): S3Location {
  const m = /^s3:\/\/([^/]+)\/?(.*)$/i.exec(location);
  if (!m || !m[1]) throw new Error(`${location}: not an s3://bucket/prefix location`);
  const bucket = m[1];
  // S3 bucket names: 3-63 of lowercase letters, digits, '.', '-'. Underscores appear in old buckets.
  if (!/^[a-z0-9][a-z0-9._-]{1,62}$/.test(bucket)) throw new Error(`${location}: "${bucket}" is not a valid bucket name`);
  const rest = m[2].replace(/^\/+/, '');
  return { bucket, prefix: rest && !rest.endsWith('/') ? `${rest}/` : rest };
}
