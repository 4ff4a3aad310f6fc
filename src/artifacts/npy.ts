// NumPy .npy (format 1.0) for embedding matrices, so `numpy.load` reads them as is. Float16
// matrices ('<f2', `embed.dtype: float16`) travel as their bits in a Uint16Array (Node 20 has no
// Float16Array; this project stores no other 16-bit type) and are read back as float32.
import { fromHalfArray } from '../util/float16.ts';

const MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 0x01, 0x00]);

type Dtype = '<f4' | '<f2' | '<i4' | '|u1';
/** Uint16Array: float16 bits. */
type Typed = Float32Array | Uint16Array | Int32Array | Uint8Array;
const SIZE: Record<Dtype, number> = { '<f4': 4, '<f2': 2, '<i4': 4, '|u1': 1 };

export interface NpyArray {
  dtype: Dtype;
  shape: number[];
  data: Typed;
}

export function encodeNpy(data: Typed, shape: number[]): Buffer {
  const dtype: Dtype = data instanceof Float32Array ? '<f4' : data instanceof Uint16Array ? '<f2' : data instanceof Int32Array ? '<i4' : '|u1';
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
  if (descr === undefined || !Object.hasOwn(SIZE, descr) || shapeText === undefined) throw new Error(`${where}: unsupported npy header ${header.trim()}`);
  const dtype = descr as Dtype;
  const shape = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map(Number);
  const count = shape.reduce((a, b) => a * b, 1);
  const offset = start + headerLen;
  // Copy so the typed array is aligned whatever the Buffer's pool offset is.
  const bytes = new Uint8Array(buf.subarray(offset, offset + count * SIZE[dtype]));
  if (bytes.length !== count * SIZE[dtype]) throw new Error(`${where}: truncated (${bytes.length} of ${count * SIZE[dtype]} data bytes)`);
  const data =
    dtype === '<f4'
      ? new Float32Array(bytes.buffer, 0, count)
      : dtype === '<f2'
        ? new Uint16Array(bytes.buffer, 0, count)
        : dtype === '<i4'
          ? new Int32Array(bytes.buffer, 0, count)
          : bytes;
  return { dtype, shape, data };
}

/** A float matrix's values as float32, whether stored as '<f4' or '<f2' (converted). */
export function floatData(a: NpyArray, where = 'npy'): Float32Array {
  if (a.dtype === '<f4') return a.data as Float32Array;
  if (a.dtype === '<f2') return fromHalfArray(a.data as Uint16Array);
  throw new Error(`${where}: expected float32 or float16 values, found ${a.dtype}`);
}
