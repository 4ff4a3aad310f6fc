import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { decodeNpy, encodeNpy, floatData } from '../src/artifacts/npy.ts';
import { toHalfArray } from '../src/util/float16.ts';
import { hasNumpy } from './helpers.ts';

test('npy round-trips float32 matrices and uint8 masks', () => {
  const m = new Float32Array([1, 2, 3, 4, 5, 6]);
  const back = decodeNpy(encodeNpy(m, [2, 3]));
  assert.deepEqual(back.shape, [2, 3]);
  assert.deepEqual([...back.data], [...m]);
  const mask = decodeNpy(encodeNpy(new Uint8Array([1, 0, 1]), [3]));
  assert.deepEqual([...mask.data], [1, 0, 1]);
  assert.throws(() => decodeNpy(encodeNpy(m, [2, 3]).subarray(0, 100), 'x.npy'), /x\.npy: truncated/);
});

test("float16 matrices: '<f2' in the header, two bytes a value, read back as float32", () => {
  const m = new Float32Array([0.5, -1, 1 / 3, 65504, 2 ** -24, 0.1]);
  const buf = encodeNpy(toHalfArray(m), [2, 3]);
  assert.match(buf.subarray(10, 80).toString('latin1'), /'descr': '<f2'/);
  assert.equal(encodeNpy(m, [2, 3]).length - buf.length, 2 * m.length, 'the same header, half the data bytes');
  const back = decodeNpy(buf);
  assert.equal(back.dtype, '<f2');
  assert.deepEqual(back.shape, [2, 3]);
  assert.deepEqual([...floatData(back)], [0.5, -1, 0.333251953125, 65504, 2 ** -24, 0.0999755859375]);
  assert.deepEqual([...floatData(decodeNpy(encodeNpy(m, [2, 3])))], [...m], 'float32 as it is');
  assert.throws(() => floatData(decodeNpy(encodeNpy(new Int32Array([1]), [1])), 'ids.npy'), /ids\.npy: expected float32 or float16 values, found <i4/);
});

test('numpy reads what we write', { skip: !hasNumpy && 'numpy not installed' }, () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'npy-'));
  const file = path.join(dir, 'a.npy');
  writeFileSync(file, encodeNpy(new Float32Array([0.5, -1, 2, 3]), [2, 2]));
  const out = execFileSync('python3', ['-c', `import numpy as n; a=n.load('${file}'); print(a.dtype, a.shape, a.sum())`])
    .toString()
    .trim();
  assert.equal(out, 'float32 (2, 2) 4.5');
  const half = path.join(dir, 'h.npy');
  writeFileSync(half, encodeNpy(toHalfArray(new Float32Array([0.5, -1, 1 / 3, 3])), [2, 2]));
  const read = execFileSync('python3', ['-c', `import numpy as n; a=n.load('${half}'); print(a.dtype, a.shape, a.tolist())`])
    .toString()
    .trim();
  assert.equal(read, 'float16 (2, 2) [[0.5, -1.0], [0.333251953125, 3.0]]');
});
