// One image's bytes from the catalog's record of where they are: a ranged read of the tar member.
import type { Storage } from '../storage/storage.ts';

export interface ImageLocation {
  tar: string;
  offset: number;
  length: number;
}

export function readImageBytes(input: Storage, loc: ImageLocation): Promise<Buffer> {
  return input.readRange(loc.tar, loc.offset, loc.length);
}
