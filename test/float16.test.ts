// The hand-written float32 <-> float16 conversions (src/util/float16.ts): every one of the 65,536
// half values round-trips bit for bit, every rounding boundary between two halves rounds to
// nearest even, known values, and numpy's astype(float16) on random and special values.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { floatBitsOfHalfBits, fromHalf, fromHalfArray, halfBitsOfFloatBits, toHalf, toHalfArray } from '../src/util/float16.ts';
import { hasNumpy } from './helpers.ts';

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
const bitsOf = (v: number) => ((f32[0] = v), u32[0]);
const floatOfBits = (bits: number) => ((u32[0] = bits), f32[0]);
const hex = (h: number) => `0x${h.toString(16).padStart(4, '0')}`;

/** A half's value by the textbook formula, apart from the code under test. */
function reference(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0x1f) return m ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return e === 0 ? sign * m * 2 ** -24 : sign * (1 + m / 1024) * 2 ** (e - 15);
}

test('every half value round-trips bit for bit through float32, NaN payloads and signed zeros included', () => {
  const all = Uint16Array.from({ length: 0x10000 }, (_, h) => h);
  for (let h = 0; h < 0x10000; h++) {
    const bits = floatBitsOfHalfBits(h);
    assert.equal(halfBitsOfFloatBits(bits), h, `${hex(h)} -> float32 0x${bits.toString(16)} -> back`);
    const want = reference(h);
    if (Number.isNaN(want)) assert.ok(Number.isNaN(fromHalf(h)), `${hex(h)} is a NaN`);
    else assert.ok(Object.is(fromHalf(h), want), `${hex(h)}: ${fromHalf(h)} vs ${want}`);
    if (!Number.isNaN(want)) assert.equal(toHalf(want), h, `toHalf(${want})`);
  }
  assert.deepEqual(toHalfArray(fromHalfArray(all)), all, 'the array forms');
});

test('every rounding boundary between two adjacent halves: ties to even, one float32 either side to the nearer', () => {
  // Positive finite halves in bit order are in value order; 0x7c00 (infinity) stands for 65536,
  // the next value the format would have, so 65520 and up overflow, as IEEE 754 says.
  for (let h = 0; h < 0x7c00; h++) {
    const lo = reference(h);
    const hi = h + 1 === 0x7c00 ? 65536 : reference(h + 1);
    const mid = (lo + hi) / 2; // 12 significant bits at most: exact in float32
    assert.equal(Math.fround(mid), mid);
    const even = h % 2 === 0 ? h : h + 1;
    for (const sign of [0, 0x8000]) {
      const s = sign ? -1 : 1;
      assert.equal(toHalf(s * mid), sign | even, `tie between ${hex(h)} and ${hex(h + 1)}`);
      assert.equal(halfBitsOfFloatBits(bitsOf(s * mid) - 1), sign | h, `just under the tie above ${hex(h)}`);
      assert.equal(halfBitsOfFloatBits(bitsOf(s * mid) + 1), sign | (h + 1), `just over the tie below ${hex(h + 1)}`);
    }
  }
});

test('known values', () => {
  const cases: Array<[number, number]> = [
    [0, 0x0000],
    [-0, 0x8000],
    [1, 0x3c00],
    [-2, 0xc000],
    [0.5, 0x3800],
    [0.1, 0x2e66],
    [1 / 3, 0x3555],
    [Math.PI, 0x4248],
    [65504, 0x7bff], // the largest half
    [65519.99, 0x7bff],
    [65520, 0x7c00], // halfway to 65536: rounds to even, which is infinity
    [1e6, 0x7c00],
    [-1e6, 0xfc00],
    [Number.POSITIVE_INFINITY, 0x7c00],
    [Number.NEGATIVE_INFINITY, 0xfc00],
    [2 ** -14, 0x0400], // the smallest normal
    [1023 * 2 ** -24, 0x03ff], // the largest subnormal
    [2 ** -24, 0x0001], // the smallest subnormal
    [2 ** -25, 0x0000], // half of it: a tie, to even (zero)
    [-(2 ** -25), 0x8000],
    [2 ** -25 * (1 + 2 ** -23), 0x0001], // just over the tie
    [3 * 2 ** -25, 0x0002], // 1.5 units: to even
    [5 * 2 ** -25, 0x0002], // 2.5 units: to even
    [1 + 2 ** -11, 0x3c00], // tie between 1 and 1 + 2^-10: to even
    [1 + 3 * 2 ** -11, 0x3c02],
    [2 ** -14 - 2 ** -25, 0x0400], // a tie between the largest subnormal and the smallest normal: to even
    [1e-10, 0x0000],
    [floatOfBits(1), 0x0000], // the smallest float32 subnormal
  ];
  for (const [v, h] of cases) assert.equal(hex(toHalf(v)), hex(h), `toHalf(${v})`);
  assert.equal(toHalf(Number.NaN) & 0x7c00, 0x7c00);
  assert.ok(toHalf(Number.NaN) & 0x3ff, 'NaN stays NaN');
  assert.ok(Number.isNaN(fromHalf(0x7e00)) && Number.isNaN(fromHalf(0xfc01)));
  // A float32 NaN whose payload lies below the half's mantissa still gives a NaN, not infinity.
  assert.equal(halfBitsOfFloatBits(0x7f800001), 0x7c01);
  assert.equal(halfBitsOfFloatBits(0xffc00000), 0xfe00);
  assert.equal(fromHalf(0x3c00), 1);
  assert.equal(fromHalf(0x0001), 2 ** -24);
  assert.equal(fromHalf(0xfbff), -65504);
  assert.ok(Object.is(fromHalf(0x8000), -0));
});

test("numpy's astype(float16) agrees on random and special float32 values", { skip: !hasNumpy && 'numpy not installed' }, () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'megapairs-f16-'));
  let seed = 12345;
  const next = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0), seed);
  // Random bit patterns (every exponent; NaNs with payloads above and below the half's mantissa), values near 1 and near the half's limits.
  const values = new Float32Array(320_000);
  const bits = new Uint32Array(values.buffer);
  for (let i = 0; i < 100_000; i++) bits[i] = next();
  for (let i = 300_000; i < 320_000; i++) bits[i] = (next() & (i % 2 ? 0x807fffff : 0x80001fff)) | 0x7f800001;
  for (let i = 100_000; i < 200_000; i++) values[i] = (next() / 2 ** 32 - 0.5) * 4;
  for (let i = 200_000; i < 300_000; i++) values[i] = (next() / 2 ** 32 - 0.5) * 2 ** ((next() % 50) - 30);
  writeFileSync(path.join(dir, 'in.f32'), values);
  execFileSync('python3', [
    '-c',
    `import numpy as n; a=n.fromfile('${dir}/in.f32', dtype='<f4'); n.seterr(all='ignore'); a.astype('<f2').tofile('${dir}/out.f16')`,
  ]);
  const theirs = new Uint16Array(new Uint8Array(readFileSync(path.join(dir, 'out.f16'))).buffer);
  const ours = toHalfArray(values);
  let differ = 0;
  for (let i = 0; i < values.length; i++) if (ours[i] !== theirs[i]) differ++;
  assert.equal(differ, 0, `${differ} of ${values.length} values differ from numpy (bit for bit, NaN payloads too)`);
});
