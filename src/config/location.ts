// Location strings: a URL (s3://bucket/prefix) or a local path. Kept apart from open.ts so that
// config loading can tell them apart without loading the storage clients.
export const isUrl = (location: string): boolean => /^[a-z][a-z0-9+.-]*:\/\//i.test(location);
