// The images as the MLLM gets them: JPEG (alpha flattened on white) fitting inside size x size, as
// a data URL. Encoded once per process and image: a pair's images recur in many pairs, and the
// cache is bounded in bytes so memory stays bounded.
import { createHash } from 'node:crypto';
import sharp from 'sharp';
import { LruCache } from '../util/lru.ts';
import type { PairImage } from './annotator.ts';

/** Data URLs kept per process, in bytes (about 1,000 images of 512 px). */
const CACHE_BYTES = 64 * 1024 * 1024;
const cache = new LruCache<string>(CACHE_BYTES);

/** How many encodes this process did (a cache hit does none): for tests and the bench. */
export const imageEncodes = { count: 0 };

/** The image's bytes could not be read (an outage, a tar cut on shared storage): an environmental fault. */
export class ImageBytesUnreadable extends Error {
  constructor(key: string, cause: unknown) {
    super(`image ${key}: its bytes cannot be read as catalogued`, { cause });
    this.name = 'ImageBytesUnreadable';
  }
}

export async function imageDataUrl(image: PairImage, size: number): Promise<string> {
  // Keyed by the bytes themselves: an image key alone could name other bytes in another input.
  let bytes: Buffer;
  try {
    bytes = await image.bytes();
  } catch (err) {
    // Bytes that cannot be read as catalogued are the storage's fault, not the image's: the unit fails.
    throw new ImageBytesUnreadable(image.key, err);
  }
  const key = `${size}:${createHash('sha1').update(bytes).digest('hex')}`;
  return cache.get(key, () => encode(bytes, size), estimateBytes(size));
}

async function encode(bytes: Buffer, size: number): Promise<string> {
  imageEncodes.count++;
  const jpeg = await sharp(bytes)
    .rotate() // honour EXIF orientation: the model should see what a person sees
    .flatten({ background: '#ffffff' })
    .resize({ width: size, height: size, fit: 'inside', withoutEnlargement: true })
    .jpeg({ quality: 90 })
    .toBuffer();
  return `data:image/jpeg;base64,${jpeg.toString('base64')}`;
}

/** Base64 of a size x size JPEG at quality 90, generously: about 0.5 bytes a pixel. */
function estimateBytes(size: number): number {
  return Math.ceil(size * size * 0.5 * (4 / 3));
}
