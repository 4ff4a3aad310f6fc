// NumPy .npy (format 1.0) for embedding matrices, so `numpy.load` reads them as is.
const MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 0x01, 0x00]);

type Dtype = '<f4' | '<i4' | '|u1';
type Typed = Float32Array | Int32Array | Uint8Array;
const SIZE: Record<Dtype, number> = { '<f4': 4, '<i4': 4, '|u1': 1 };

export interface NpyArray {
  dtype: Dtype;
  shape: number[];
  data: Typed;
}

export function encodeNpy(data: Typed, shape: number[]): Buffer {
  const dtype: Dtype = data instanceof Float32Array ? '<f4' : data instanceof Int32Array ? '<i4' : '|u1';
  const count = shape.reduce((a, b) => a * b, 1);
  if (count !== data.length) throw new Error(`npy: shape [${shape}] does not hold ${data.length} values`);
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let header = `{'descr': '${dtype}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  // Header padded with spaces and ended by '\n' so the data starts on a 64-byte boundary.
  const unpadded = MAGIC.length + 2 + header.length + 1;
  header += ' '.repeat((64 - (unpadded % 64)) % 64) + '\n';
  const head = Buffer.alloc(MAGIC.length + 2);
  MAGIC.copy(head);
  head.writeUInt16LE(header.length, MAGIC.length);
  const body = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return Buffer.concat([head, Buffer.from(header, 'latin1'), body]);
}

export function decodeNpy(buf: Buffer, where = 'npy'): NpyArray {
  if (buf.length < 10 || !buf.subarray(0, 6).equals(MAGIC.subarray(0, 6))) throw new Error(`${where}: not a .npy file`);
  const major = buf[6];
  const headerLen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  const header = buf.subarray(start, start + headerLen).toString('latin1');
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (/'fortran_order':\s*True/.test(header)) throw new Error(`${where}: fortran-ordered arrays are not supported`);
  if (!(descr === '<f4' || descr === '<i4' || descr === '|u1') || shapeText === undefined) throw new Error(`${where}: unsupported npy header ${header.trim()}`);
  const shape = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map(Number);
  const count = shape.reduce((a, b) => a * b, 1);
  const offset = start + headerLen;
  // Copy so the typed array is aligned whatever the Buffer's pool offset is.
  const bytes = new Uint8Array(buf.subarray(offset, offset + count * SIZE[descr]));
  if (bytes.length !== count * SIZE[descr]) throw new Error(`${where}: truncated (${bytes.length} of ${count * SIZE[descr]} data bytes)`);
  const data = descr === '<f4' ? new Float32Array(bytes.buffer, 0, count) : descr === '<i4' ? new Int32Array(bytes.buffer, 0, count) : bytes;
  return { dtype: descr, shape, data };
}
