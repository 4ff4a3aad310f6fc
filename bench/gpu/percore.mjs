// Per core, on one thread, the same JPEGs: sharp's decode to raw RGB, sharp's own resize and crop,
// and the project's CLIP and DINOv2 preprocessing (decode included). One JSON line each.
// Usage: node percore.mjs <app dir> <corpus dir> [images, default 300]
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';

const [appDir, corpus, nArg] = process.argv.slice(2);
const app = path.resolve(appDir);
const sharp = createRequire(`${app}/`)('sharp');
const imp = (p) => import(path.join(app, 'dist', 'src', p));
const [{ parseConfig }, { resolveEncoders }, { preprocessImages }] = await Promise.all([
  imp('config/load.js'),
  imp('encoders/resolve.js'),
  imp('encoders/preprocess-images.js'),
]);
sharp.concurrency(1);
// The JPEGs out of the first tar (512-byte headers, bodies padded to 512).
const tar = fs.readFileSync(path.join(corpus, '00000.tar'));
const jpegs = [];
for (let o = 0; o + 512 <= tar.length && jpegs.length < Number(nArg ?? 300); ) {
  const name = tar.toString('utf8', o, o + 100).replace(/\0.*$/s, '');
  if (!name) break;
  const size = Number.parseInt(
    tar
      .toString('utf8', o + 124, o + 136)
      .replace(/\0.*$/s, '')
      .trim(),
    8,
  );
  if (name.endsWith('.jpg')) jpegs.push(tar.subarray(o + 512, o + 512 + size));
  o += 512 + Math.ceil(size / 512) * 512;
}
const config = parseConfig({
  run: { name: 'percore' },
  input: { path: corpus },
  work: '/tmp/percore-work',
  output: '/tmp/percore-out',
  encoders: { visual_semantic: { model: 'x.onnx', preset: 'clip' }, visual_pattern: { model: 'y.onnx', preset: 'dinov2' } },
});
// The built-in caption encoder (unused here) resolves from the bundle's models in MEGAPAIRS_CACHE.
const [clip, dino] = (await resolveEncoders(config, process.env.MEGAPAIRS_CACHE ?? '/tmp')).images;
const rate = async (what, fn) => {
  for (const b of jpegs.slice(0, 10)) await fn(b);
  const t = performance.now();
  for (const b of jpegs) await fn(b);
  console.log(JSON.stringify({ per_core: what, per_s: +(jpegs.length / ((performance.now() - t) / 1000)).toFixed(1) }));
};
await rate('sharp decode to raw RGB', (b) => sharp(b).raw().toBuffer());
await rate("sharp's own resize (cubic) and centre crop", (b) => sharp(b).resize(224, 224, { kernel: 'cubic', fit: 'cover' }).raw().toBuffer());
await rate('project CLIP preprocessing', (b) => preprocessImages({ bytes: new Uint8Array(b), specs: [clip], maxPixels: 1e8 }));
await rate('project DINOv2 preprocessing', (b) => preprocessImages({ bytes: new Uint8Array(b), specs: [dino], maxPixels: 1e8 }));
await rate('project CLIP + DINOv2 (one decode)', (b) => preprocessImages({ bytes: new Uint8Array(b), specs: [clip, dino], maxPixels: 1e8 }));
