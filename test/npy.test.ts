import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { decodeNpy, encodeNpy } from '../src/artifacts/npy.ts';

const hasNumpy = (() => {
  try {
    execFileSync('python3', ['-c', 'import numpy']);
    return true;
  } catch {
    return false;
  }
})();

test('npy round-trips float32 matrices and uint8 masks', () => {
  const m = new Float32Array([1, 2, 3, 4, 5, 6]);
  const back = decodeNpy(encodeNpy(m, [2, 3]));
  assert.deepEqual(back.shape, [2, 3]);
  assert.deepEqual([...back.data], [...m]);
  const mask = decodeNpy(encodeNpy(new Uint8Array([1, 0, 1]), [3]));
  assert.deepEqual([...mask.data], [1, 0, 1]);
  assert.throws(() => decodeNpy(encodeNpy(m, [2, 3]).subarray(0, 100), 'x.npy'), /x\.npy: truncated/);
});

test('numpy reads what we write', { skip: !hasNumpy && 'numpy not installed' }, () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'npy-'));
  const file = path.join(dir, 'a.npy');
  writeFileSync(file, encodeNpy(new Float32Array([0.5, -1, 2, 3]), [2, 2]));
  const out = execFileSync('python3', ['-c', `import numpy as n; a=n.load('${file}'); print(a.dtype, a.shape, a.sum())`])
    .toString()
    .trim();
  assert.equal(out, 'float32 (2, 2) 4.5');
});
