// PIL's resampler (Pillow's libImaging/Resample.c), written out so images resize exactly as the
// models were trained: CLIP, open_clip, DINOv2 and Hugging Face processors all resize with
// PIL.Image.resize. sharp/libvips cannot stand in: for large reductions it shrinks with a box
// filter first and applies the kernel only to the rest, and its kernel tables and fixed-point
// rounding are its own, so its pixels come out several levels off PIL's. PIL's kernels widen by the
// scale factor, are normalised per output pixel, quantised to 22-bit fixed point and applied
// horizontally then vertically through an 8-bit intermediate; each of those
// steps shows in the output, so each is kept. native/resample.c does the same arithmetic in C
// (resampler.kind 'native'); this JavaScript is the fallback where that addon is not built.

import { resampler } from './native-addon.ts';

export type Interpolation = 'bicubic' | 'bilinear' | 'lanczos3';

/** The addon's filter numbers (native/resample.c's FILTERS). */
const FILTER_IDS: Record<Interpolation, number> = { bilinear: 0, bicubic: 1, lanczos3: 2 };

const PRECISION_BITS = 32 - 8 - 2;
const HALF = 2 ** (PRECISION_BITS - 1);

const sinc = (x: number) => (x === 0 ? 1 : Math.sin(Math.PI * x) / (Math.PI * x));
const FILTERS: Record<Interpolation, { support: number; f: (x: number) => number }> = {
  bilinear: { support: 1, f: (x) => (x < 0 ? (x > -1 ? 1 + x : 0) : x < 1 ? 1 - x : 0) },
  bicubic: {
    support: 2,
    f: (x) => {
      const a = -0.5;
      x = Math.abs(x);
      if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
      if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
      return 0;
    },
  },
  lanczos3: { support: 3, f: (x) => (x >= -3 && x < 3 ? sinc(x) * sinc(x / 3) : 0) },
};

/**
 * For each output index of the window [from, from + first.length), indexed from `from`: first
 * input index, tap count and fixed-point weights (precompute_coeffs + normalize_coeffs_8bpc). PIL
 * computes them for every output index, but each index's are its own, and the resized size comes
 * from the image's header (a 1 x 200000 image resizes to 224 x 44800000): only the window's are made.
 */
interface Coefficients {
  from: number;
  ksize: number;
  first: Int32Array;
  count: Int32Array;
  weights: Int32Array; // window * ksize
}

function coefficients(inSize: number, outSize: number, from: number, to: number, interpolation: Interpolation): Coefficients {
  const { support: base, f } = FILTERS[interpolation];
  const scale = inSize / outSize;
  const filterscale = Math.max(scale, 1);
  const support = base * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const first = new Int32Array(to - from);
  const count = new Int32Array(to - from);
  const weights = new Int32Array((to - from) * ksize);
  const k = new Float64Array(ksize);
  for (let xx = from; xx < to; xx++) {
    const i = xx - from;
    const center = (xx + 0.5) * scale;
    const ss = 1 / filterscale;
    // C's (int) truncates toward zero; the values here are >= -support + 0.5 so trunc is what PIL does.
    const xmin = Math.max(0, Math.trunc(center - support + 0.5));
    const xmax = Math.min(inSize, Math.trunc(center + support + 0.5)) - xmin;
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      k[x] = f((x + xmin - center + 0.5) * ss);
      ww += k[x];
    }
    for (let x = 0; x < xmax; x++) {
      const w = ww !== 0 ? k[x] / ww : k[x];
      weights[i * ksize + x] = w < 0 ? Math.trunc(-0.5 + w * 2 ** PRECISION_BITS) : Math.trunc(0.5 + w * 2 ** PRECISION_BITS);
    }
    first[i] = xmin;
    count[i] = xmax;
  }
  return { from, ksize, first, count, weights };
}

/** PIL's clip8: the sums stay within int32 as in C, so the shift is its floor division. */
const clip8 = (ss: number) => (ss <= 0 ? 0 : ss >= 1 << (PRECISION_BITS + 8) ? 255 : ss >> PRECISION_BITS);

/** The longest resized side (the addon's int32). */
const MAX_SIDE = 2 ** 31 - 1;

export interface ResizeWindow {
  width: number;
  height: number;
  left: number;
  top: number;
  cropW: number;
  cropH: number;
}

/**
 * Resizes interleaved 8-bit `channels`-band pixels of w x h to outW x outH as PIL.Image.resize
 * does, and returns only the window [left, left + cropW) x [top, top + cropH) of the result (the
 * rest is never computed). Pixels of the window outside the resized image are 0, as torchvision's
 * center_crop pads. Native where the addon is built, else resizeWindowJs.
 */
export function resizeWindow(src: Uint8Array, w: number, h: number, channels: number, out: ResizeWindow, interpolation: Interpolation): Uint8Array {
  // Both resamplers refuse what the native one cannot hold (PIL cannot make such an image either).
  if (out.width > MAX_SIDE || out.height > MAX_SIDE) throw new RangeError(`${w}x${h} image: resized to ${out.width}x${out.height}, a side over ${MAX_SIDE}`);
  if (!resampler.addon) return resizeWindowJs(src, w, h, channels, out, interpolation);
  const { width, height, left, top, cropW, cropH } = out;
  return resampler.addon.resize(src, w, h, channels, width, height, left, top, cropW, cropH, FILTER_IDS[interpolation]);
}

/** resizeWindow in JavaScript, the fallback (and the reference the parity tests hold the addon to). */
export function resizeWindowJs(src: Uint8Array, w: number, h: number, channels: number, out: ResizeWindow, interpolation: Interpolation): Uint8Array {
  const { width: outW, height: outH, left, top, cropW, cropH } = out;
  const result = new Uint8Array(cropW * cropH * channels);
  const x0 = Math.max(0, left);
  const x1 = Math.min(outW, left + cropW);
  const y0 = Math.max(0, top);
  const y1 = Math.min(outH, top + cropH);
  if (x0 >= x1 || y0 >= y1) return result;

  // Horizontal pass (skipped when the width does not change, as PIL skips it) over the input rows
  // the vertical pass will read, for the output columns of the window only.
  const vert = outH !== h ? coefficients(h, outH, y0, y1, interpolation) : undefined;
  const rowFirst = vert ? vert.first[0] : y0;
  let rowLast = y1;
  if (vert) {
    rowLast = 0;
    for (let i = 0; i < y1 - y0; i++) rowLast = Math.max(rowLast, vert.first[i] + vert.count[i]);
  }
  const cols = x1 - x0;
  const stride = cols * channels;
  const tmp = new Uint8Array((rowLast - rowFirst) * stride);
  if (outW !== w) {
    const { first, count, weights, ksize } = coefficients(w, outW, x0, x1, interpolation);
    for (let y = rowFirst; y < rowLast; y++) {
      const rowIn = y * w * channels;
      let o = (y - rowFirst) * stride;
      for (let i = 0; i < x1 - x0; i++) {
        const n = count[i];
        const kb = i * ksize;
        let p = rowIn + first[i] * channels;
        if (channels === 3) {
          let s0 = HALF;
          let s1 = HALF;
          let s2 = HALF;
          for (let x = 0; x < n; x++, p += 3) {
            const k = weights[kb + x];
            s0 += src[p] * k;
            s1 += src[p + 1] * k;
            s2 += src[p + 2] * k;
          }
          tmp[o++] = clip8(s0);
          tmp[o++] = clip8(s1);
          tmp[o++] = clip8(s2);
        } else {
          for (let c = 0; c < channels; c++) {
            let ss = HALF;
            for (let x = 0; x < n; x++) ss += src[p + x * channels + c] * weights[kb + x];
            tmp[o++] = clip8(ss);
          }
        }
      }
    }
  } else {
    for (let y = rowFirst; y < rowLast; y++) tmp.set(src.subarray((y * w + x0) * channels, (y * w + x1) * channels), (y - rowFirst) * stride);
  }

  // Vertical pass into the window, a whole row per tap so the inner loop runs over contiguous bytes.
  const acc = new Int32Array(stride);
  for (let yy = y0; yy < y1; yy++) {
    const o = ((yy - top) * cropW + (x0 - left)) * channels;
    if (!vert) {
      result.set(tmp.subarray((yy - rowFirst) * stride, (yy - rowFirst + 1) * stride), o);
      continue;
    }
    const ymin = vert.first[yy - y0] - rowFirst;
    const n = vert.count[yy - y0];
    const kb = (yy - y0) * vert.ksize;
    acc.fill(HALF);
    for (let y = 0; y < n; y++) {
      const k = vert.weights[kb + y];
      const r = (ymin + y) * stride;
      for (let i = 0; i < stride; i++) acc[i] += tmp[r + i] * k;
    }
    for (let i = 0; i < stride; i++) result[o + i] = clip8(acc[i]);
  }
  return result;
}
