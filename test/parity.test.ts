// Preprocessing parity: the project's tensors against PIL + numpy references computed by
// tools/preprocess_reference.py (committed in test/fixtures/preprocess; rerun the script to
// regenerate). Decoding is libjpeg-turbo / libpng on both sides and the resampler is PIL's own
// arithmetic, so pixels agree exactly and the tensors to float32 rounding; the tolerance allows
// one 8-bit level (1/255/std ~ 0.018) on at most a few JPEG pixels, should a decoder build differ.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import { decodeNpy } from '../src/artifacts/npy.ts';
import { geometry, preprocessRgb, resizedSize, roundHalfEven, writeChw, type ImagePreprocess } from '../src/encoders/image-preprocess.ts';

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

test('preprocessing matches PIL + torchvision on every fixture (mean and max abs difference)', async () => {
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
    writeChw(await preprocessRgb(await readFile(path.join(DIR, c.image)), p, 1e8), p, out, 0);
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
  console.log(`${report.join('\n')}\nall cases: mean abs ${(sum / count).toExponential(2)}, max abs ${worst.toExponential(2)}`);
});
