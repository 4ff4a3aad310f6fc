// Picks the storage for a location string: a local folder today; s3:// prefixes plug in here.
import { LocalStorage } from './local.ts';
import type { Storage } from './storage.ts';

export function openStorage(location: string): Storage {
  if (/^s3:\/\//i.test(location)) {
    throw new Error(`${location}: S3 locations are not supported yet in this build`);
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(location)) {
    throw new Error(`${location}: unsupported location scheme (use a local folder path)`);
  }
  return new LocalStorage(location);
}
