// Preprocessing parity: the project's tensors against PIL + numpy references computed by
// tools/preprocess_reference.py (committed in test/fixtures/preprocess; rerun the script to
// regenerate). Decoding is libjpeg-turbo / libpng on both sides and the resampler is PIL's own
// arithmetic, so pixels agree exactly and the tensors to float32 rounding; the tolerance allows
// one 8-bit level (1/255/std ~ 0.018) on at most a few JPEG pixels, should a decoder build differ.
// Both resamplers are held to it: the native addon (native/resample.c, built by npm ci) and the
// JavaScript fallback (MEGAPAIRS_RESAMPLER=js, or where the addon is not built).
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { execFile } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { decodeNpy } from '../src/artifacts/npy.ts';
import { decodeRgb, sniffSrgb8 } from '../src/encoders/decode-rgb.ts';
import { geometry, preprocessRgb, resizedSize, roundHalfEven, writeChw, writeChwJs, type ImagePreprocess } from '../src/encoders/image-preprocess.ts';
import { resampler } from '../src/encoders/native-addon.ts';
import { resizeWindow, resizeWindowJs, type Interpolation } from '../src/encoders/resample.ts';
import { repoRoot } from './helpers.ts';

const DIR = path.join(import.meta.dirname, 'fixtures', 'preprocess');
const MAX_ABS = 0.02;
const MEAN_ABS = 1e-4;

interface Case {
  image: string;
  size: number;
  resize: number;
  crop: 'center' | 'squash';
  interpolation: ImagePreprocess['interpolation'];
  mean: [number, number, number];
  std: [number, number, number];
  exif_orientation?: 'apply';
  reference: string;
}

test('torchvision geometry: 640x480 to 298x224 cropped at x=37; half offsets round to even', () => {
  assert.deepEqual(resizedSize(640, 480, 224), { width: 298, height: 224 });
  assert.deepEqual(geometry(640, 480, { size: 224, resize: 224, crop: 'center' }), { width: 298, height: 224, left: 37, top: 0, cropW: 224, cropH: 224 });
  assert.deepEqual([roundHalfEven(6.5), roundHalfEven(7.5), roundHalfEven(37), roundHalfEven(2.4)], [6, 8, 37, 2]);
  assert.deepEqual(geometry(500, 375, { size: 224, resize: 256, crop: 'center' }), { width: 341, height: 256, left: 58, top: 16, cropW: 224, cropH: 224 });
});

/** The JavaScript resampler's preprocessing, as preprocessRgb does it without the addon (writeChwJs then writes the tensor). */
async function preprocessRgbJs(bytes: Uint8Array, p: ImagePreprocess): Promise<Uint8Array> {
  const img = await decodeRgb(bytes, p, 1e8);
  return resizeWindowJs(img.rgb, img.width, img.height, 3, geometry(img.width, img.height, p), p.interpolation);
}

const forcedJs = process.env.MEGAPAIRS_RESAMPLER === 'js';

test('the native resampler is built (npm ci builds it), unless MEGAPAIRS_RESAMPLER=js asks for JavaScript', () => {
  assert.equal(resampler.kind, forcedJs ? 'js' : 'native', resampler.detail);
});

for (const [name, preprocess, chw] of [
  ['native', (bytes: Uint8Array, p: ImagePreprocess) => preprocessRgb(bytes, p, 1e8), writeChw],
  ['JavaScript', preprocessRgbJs, writeChwJs],
] as const) {
  test(`preprocessing matches PIL + torchvision on every fixture, ${name} resampler (mean and max abs difference)`, {
    skip: name === 'native' && forcedJs && 'MEGAPAIRS_RESAMPLER=js',
  }, async () => {
    const { cases } = JSON.parse(await readFile(path.join(DIR, 'cases.json'), 'utf8')) as { cases: Case[] };
    assert.ok(cases.length >= 15);
    let worst = 0;
    let sum = 0;
    let count = 0;
    const report: string[] = [];
    for (const c of cases) {
      const p: ImagePreprocess = {
        size: c.size,
        resize: c.resize,
        crop: c.crop,
        interpolation: c.interpolation,
        mean: c.mean,
        std: c.std,
        alpha: 'drop',
        background: [255, 255, 255],
        icc: 'ignore',
        exifOrientation: c.exif_orientation ?? 'ignore',
      };
      const out = new Float32Array(3 * c.size * c.size);
      chw(await preprocess(await readFile(path.join(DIR, c.image)), p), p, out, 0);
      const ref = decodeNpy(await readFile(path.join(DIR, c.reference)), c.reference);
      assert.deepEqual(ref.shape, [3, c.size, c.size]);
      let max = 0;
      let s = 0;
      out.forEach((v, i) => {
        const d = Math.abs(v - (ref.data as Float32Array)[i]);
        max = Math.max(max, d);
        s += d;
      });
      report.push(
        `${c.reference} ${c.image} ${c.interpolation} ${c.resize}/${c.size} ${c.crop}: mean ${(s / out.length).toExponential(2)} max ${max.toExponential(2)}`,
      );
      assert.ok(
        max <= MAX_ABS && s / out.length <= MEAN_ABS,
        `${c.image} (${c.reference}, ${c.interpolation}, resize ${c.resize}, size ${c.size}): mean abs ${s / out.length}, max abs ${max}`,
      );
      worst = Math.max(worst, max);
      sum += s;
      count += out.length;
    }
    console.log(`${name} resampler\n${report.join('\n')}\nall cases: mean abs ${(sum / count).toExponential(2)}, max abs ${worst.toExponential(2)}`);
  });
}

test("the native resampler gives the JavaScript one's bytes: random sizes, 1-4 bands, windows over and off the edges, every kernel", {
  skip: forcedJs && 'MEGAPAIRS_RESAMPLER=js',
}, () => {
  let seed = 19;
  const rnd = () => (seed = (seed * 1664525 + 1013904223) >>> 0) / 2 ** 32;
  const int = (lo: number, hi: number) => lo + Math.floor(rnd() * (hi - lo + 1));
  for (let i = 0; i < 400; i++) {
    const [w, h, channels] = [int(1, 200), int(1, 200), int(1, 4)];
    const src = new Uint8Array(w * h * channels);
    // Noise, hard black/white edges (the kernels' overshoot clipped at both ends) or a ramp.
    const kind = i % 3;
    for (let j = 0; j < src.length; j++) src[j] = kind === 0 ? int(0, 255) : kind === 1 ? (rnd() < 0.5 ? 0 : 255) : (j * 7) & 255;
    const [width, height] = [i % 5 === 0 ? w : int(1, 260), i % 7 === 0 ? h : int(1, 260)];
    const window = { width, height, left: int(-10, width), top: int(-10, height), cropW: int(1, 240), cropH: int(1, 240) };
    const interpolation = (['bilinear', 'bicubic', 'lanczos3'] as Interpolation[])[i % 3];
    const native = resizeWindow(src, w, h, channels, window, interpolation);
    const js = resizeWindowJs(src, w, h, channels, window, interpolation);
    assert.ok(Buffer.from(native).equals(Buffer.from(js)), `${w}x${h}x${channels} to ${JSON.stringify(window)} ${interpolation}`);
  }
});

test('a sliver image (1 x 200000, resized to 224 x 44800000) resizes its crop window alone; a resized side over 2^31 is refused by both resamplers', () => {
  // Coefficients for the whole resized side took 5 GB here (native) before; only the window's are made.
  const h = 200_000;
  const src = new Uint8Array(h * 3);
  for (let j = 0; j < src.length; j++) src[j] = (j * 7) & 255;
  const window = geometry(1, h, { size: 224, resize: 224, crop: 'center' });
  assert.equal(window.height, 224 * h);
  const js = resizeWindowJs(src, 1, h, 3, window, 'bicubic');
  if (!forcedJs) assert.ok(Buffer.from(resizeWindow(src, 1, h, 3, window, 'bicubic')).equals(Buffer.from(js)));
  // 1 x 20M: 224 x 4480000000, which the addon's int32 would wrap to another, valid-looking height.
  const huge = geometry(1, 20_000_000, { size: 224, resize: 224, crop: 'center' });
  assert.throws(() => resizeWindow(new Uint8Array(3 * 20_000_000), 1, 20_000_000, 3, huge, 'bicubic'), /resized to 224x4480000000, a side over/);
});

test('MEGAPAIRS_RESAMPLER=js makes a process resize in JavaScript, to the same bytes', async () => {
  const image = path.join(DIR, 'landscape.jpg');
  const script = `
    import { readFileSync } from 'node:fs';
    import { resampler } from './src/encoders/native-addon.ts';
    import { preprocessRgb } from './src/encoders/image-preprocess.ts';
    const p = { size: 40, resize: 46, crop: 'center', interpolation: 'bicubic', mean: [0, 0, 0], std: [1, 1, 1], alpha: 'drop', background: [255, 255, 255], icc: 'ignore', exifOrientation: 'ignore' };
    const rgb = await preprocessRgb(readFileSync(${JSON.stringify(image)}), p, 1e8);
    console.log(JSON.stringify({ kind: resampler.kind, rgb: Buffer.from(rgb).toString('base64') }));`;
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    cwd: repoRoot,
    env: { ...process.env, MEGAPAIRS_RESAMPLER: 'js' },
  });
  const child = JSON.parse(stdout) as { kind: string; rgb: string };
  assert.equal(child.kind, 'js');
  const p: ImagePreprocess = {
    size: 40,
    resize: 46,
    crop: 'center',
    interpolation: 'bicubic',
    mean: [0, 0, 0],
    std: [1, 1, 1],
    alpha: 'drop',
    background: [255, 255, 255],
    icc: 'ignore',
    exifOrientation: 'ignore',
  };
  assert.equal(child.rgb, Buffer.from(await preprocessRgb(await readFile(image), p, 1e8)).toString('base64'));
});

test("the JPEG header says 8-bit sRGB (one sharp call) exactly where sharp's metadata does", async () => {
  const sharp = (await import('sharp')).default;
  const files = (await readdir(DIR)).filter((f) => !f.endsWith('.npy') && !f.endsWith('.json'));
  const images = await Promise.all(files.map(async (f): Promise<[string, Buffer]> => [f, await readFile(path.join(DIR, f))]));
  // Progressive colour and grey JPEGs, and one with a long EXIF segment before the frame header.
  const raw = sharp(Buffer.alloc(24 * 16 * 3, 90), { raw: { width: 24, height: 16, channels: 3 } });
  images.push(['progressive.jpg', await raw.clone().jpeg({ progressive: true }).toBuffer()]);
  images.push(['grey-progressive.jpg', await raw.clone().toColourspace('b-w').jpeg({ progressive: true }).toBuffer()]);
  images.push([
    'exif.jpg',
    await raw
      .clone()
      .jpeg()
      .withExif({ IFD0: { ImageDescription: 'x'.repeat(300) } })
      .toBuffer(),
  ]);
  const said: string[] = [];
  for (const [name, bytes] of images) {
    const meta = await sharp(bytes).metadata();
    const srgb8 = meta.format === 'jpeg' && meta.space === 'srgb' && meta.depth === 'uchar' && meta.channels === 3;
    assert.equal(sniffSrgb8(bytes), srgb8, `${name}: ${meta.format} ${meta.space} ${meta.depth} ${meta.channels}`);
    if (srgb8) said.push(name);
  }
  assert.deepEqual(said.sort(), ['exif-rotated.jpg', 'exif.jpg', 'icc.jpg', 'landscape.jpg', 'portrait.jpg', 'progressive.jpg']);
});
