// IEEE 754 binary16 ("half") <-> binary32, for fp16 model inputs and outputs and for embeddings
// stored as float16 (`embed.dtype: float16`, numpy's '<f2'). Hand-written because Node 20 has no
// Float16Array (nor Math.f16round): the conversions work on the float32 bit patterns, so they are
// exact where a conversion can be (every half value has a float32 twin, NaN payloads included) and
// round to nearest, ties to even, otherwise, as numpy's astype(float16) and the hardware do.
// float32 -> half: values beyond the largest half (65504, rounding) become infinity, those below
// half the smallest subnormal (2^-25) become a signed zero. half -> float32 is a table lookup.
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** The float16 bits (0..0xffff) nearest the float32 with these bits (a uint32). */
export function halfBitsOfFloatBits(x: number): number {
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;
  // Infinity stays infinity; a NaN keeps the top of its payload (and at least one bit, to stay NaN), as numpy.
  if (exp === 0xff) return sign | 0x7c00 | (mant ? mant >>> 13 || 1 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // Below 2^-25 (float32 subnormals included): a signed zero.
    if (e < -10) return sign;
    // A half subnormal: the 24-bit significand shifted down to units of 2^-24, rounded.
    const m = mant | 0x800000;
    const shift = 14 - e;
    const half = m >>> shift;
    const rest = m & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    // Rounding up out of the largest subnormal gives the smallest normal, as it should.
    return sign | (half + (rest > mid || (rest === mid && half & 1) ? 1 : 0));
  }
  const half = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  // A carry out of the mantissa bumps the exponent (and, from 65504 up, gives infinity).
  return sign | (half + (rest > 0x1000 || (rest === 0x1000 && half & 1) ? 1 : 0));
}

/** The float32 bits (a uint32) of the half with these bits: exact, NaN payloads kept. */
export function floatBitsOfHalfBits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0x1f) return (sign | 0x7f800000 | (mant << 13)) >>> 0;
  if (exp !== 0) return (sign | ((exp + 127 - 15) << 23) | (mant << 13)) >>> 0;
  if (mant === 0) return sign >>> 0;
  // A subnormal mant x 2^-24 is normal in float32: shift its leading one up to the implicit bit.
  const shift = Math.clz32(mant) - 21;
  return (sign | ((127 - 15 + 1 - shift) << 23) | (((mant << shift) & 0x3ff) << 13)) >>> 0;
}

let table: Uint32Array | undefined;
/** float32 bits of every half, by its bits (256 KiB, built on first use). */
function halfTable(): Uint32Array {
  if (!table) {
    table = new Uint32Array(0x10000);
    for (let h = 0; h < 0x10000; h++) table[h] = floatBitsOfHalfBits(h);
  }
  return table;
}

/** The half bits nearest `v` (as a float32 first: `v` is rounded once, to float32, then to half). */
export function toHalf(v: number): number {
  f32[0] = v;
  return halfBitsOfFloatBits(u32[0]);
}

export function fromHalf(h: number): number {
  u32[0] = halfTable()[h & 0xffff];
  return f32[0];
}

/** Each value's half bits; reads the float32 bits directly, so a NaN's payload survives. */
export function toHalfArray(a: Float32Array): Uint16Array {
  const bits = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const out = new Uint16Array(a.length);
  for (let i = 0; i < bits.length; i++) out[i] = halfBitsOfFloatBits(bits[i]);
  return out;
}

export function fromHalfArray(a: Uint16Array): Float32Array {
  const t = halfTable();
  const out = new Uint32Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = t[a[i]];
  return new Float32Array(out.buffer);
}
