// PIL's resampler (Pillow's libImaging/Resample.c: precompute_coeffs, normalize_coeffs_8bpc,
// ImagingResampleHorizontal_8bpc / Vertical_8bpc) in C, so that images resize exactly as the
// models were trained at native speed. It is our own because no well-kept library does
// PIL-exact resampling: sharp/libvips shrinks by a box filter first on large reductions and has
// its own kernel tables and rounding (several levels off PIL's, see src/encoders/resample.ts);
// pillow-simd trades the 22-bit coefficients for 16-bit ones. Only the crop window is computed.
// src/encoders/resample.ts holds the same arithmetic in JavaScript, used when this addon is not
// built; test/parity.test.ts checks both against PIL. addon.c is the N-API glue.
#include "resample.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

#define PRECISION_BITS (32 - 8 - 2)
#define HALF (1 << (PRECISION_BITS - 1))

static double bilinear_filter(double x) {
  if (x < 0.0) x = -x;
  if (x < 1.0) return 1.0 - x;
  return 0.0;
}

static double bicubic_filter(double x) {
  const double a = -0.5;
  if (x < 0.0) x = -x;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

static double sinc_filter(double x) {
  if (x == 0.0) return 1.0;
  x = x * M_PI;
  return sin(x) / x;
}

static double lanczos_filter(double x) {
  if (-3.0 <= x && x < 3.0) return sinc_filter(x) * sinc_filter(x / 3);
  return 0.0;
}

typedef struct {
  double (*f)(double);
  double support;
} filter;

// Index order matches resample.ts's FILTER_IDS.
static const filter FILTERS[] = {{bilinear_filter, 1.0}, {bicubic_filter, 2.0}, {lanczos_filter, 3.0}};

// Coefficients of the output indices [from, from + n) only: those of the crop window. PIL computes
// them for every output index, but each index's are its own, and the resized size comes from the
// image's header (a 1 x 200000 image resizes to 224 x 44800000), so only the window's are kept.
typedef struct {
  int ksize;
  int from, n;
  int *bounds;  // per window output index (xx - from): first input index, tap count
  int32_t *kk;  // n * ksize fixed-point weights
} coeffs;

// precompute_coeffs + normalize_coeffs_8bpc for the box [0, inSize), output indices [from, to). 0 on allocation failure.
static int precompute(int inSize, int outSize, int from, int to, const filter *fp, coeffs *c) {
  double scale = (double)inSize / outSize;
  double filterscale = scale < 1.0 ? 1.0 : scale;
  double support = fp->support * filterscale;
  int ksize = (int)ceil(support) * 2 + 1;
  double *k = malloc(ksize * sizeof(double));
  c->ksize = ksize;
  c->from = from;
  c->n = to - from;
  c->bounds = malloc((size_t)c->n * 2 * sizeof(int));
  c->kk = calloc((size_t)c->n * ksize, sizeof(int32_t));
  if (!k || !c->bounds || !c->kk) {
    free(k);
    return 0;
  }
  for (int xx = from; xx < to; xx++) {
    const size_t i = (size_t)(xx - from);
    double center = (xx + 0.5) * scale;
    double ww = 0.0;
    double ss = 1.0 / filterscale;
    int xmin = (int)(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = (int)(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    xmax -= xmin;
    for (int x = 0; x < xmax; x++) {
      double w = fp->f((x + xmin - center + 0.5) * ss);
      k[x] = w;
      ww += w;
    }
    for (int x = 0; x < xmax; x++) {
      double w = ww != 0.0 ? k[x] / ww : k[x];
      c->kk[i * ksize + x] = w < 0 ? (int32_t)(-0.5 + w * (1 << PRECISION_BITS)) : (int32_t)(0.5 + w * (1 << PRECISION_BITS));
    }
    c->bounds[i * 2] = xmin;
    c->bounds[i * 2 + 1] = xmax;
  }
  free(k);
  return 1;
}

static void free_coeffs(coeffs *c) {
  free(c->bounds);
  free(c->kk);
}

static inline uint8_t clip8(int32_t in) {
  if (in >= (1 << PRECISION_BITS << 8)) return 255;
  if (in <= 0) return 0;
  return (uint8_t)(in >> PRECISION_BITS);
}

#if defined(__SSE2__)
#include <emmintrin.h>

// SSE2 has no 32-bit multiply, but its 16-bit multiply-add (pmaddwd) is exact here when each
// weight is split as k = hi * 2^15 + lo (lo in [0, 2^15), |hi| < 2^8): sum(p * k) =
// (sum(p * hi) << 15) + sum(p * lo), each pmaddwd summing two taps of R, G, B (and one unused
// byte). The int32 result is PIL's to the bit. Per output index, pairs of taps (t, t+1) as two
// int16 in one int32, the odd tap paired with 0.
typedef struct {
  int stride;  // pairs per output index
  __m128i *lo, *hi;  // each pair broadcast to the four lanes, ready for pmaddwd
} split_coeffs;

// Indexed as c is: by window output index (xx - c->from).
static int split(const coeffs *c, split_coeffs *s) {
  s->stride = (c->ksize + 1) / 2;
  s->lo = malloc((size_t)c->n * s->stride * sizeof(__m128i));
  s->hi = malloc((size_t)c->n * s->stride * sizeof(__m128i));
  if (!s->lo || !s->hi) return 0;
  for (int xx = 0; xx < c->n; xx++) {
    const int n = c->bounds[xx * 2 + 1];
    const int32_t *k = c->kk + (size_t)xx * c->ksize;
    for (int q = 0; q < s->stride; q++) {
      const int32_t k0 = 2 * q < n ? k[2 * q] : 0, k1 = 2 * q + 1 < n ? k[2 * q + 1] : 0;
      s->lo[(size_t)xx * s->stride + q] = _mm_set1_epi32((int32_t)((uint32_t)(k0 & 0x7fff) | (uint32_t)(k1 & 0x7fff) << 16));
      s->hi[(size_t)xx * s->stride + q] = _mm_set1_epi32((int32_t)((uint32_t)(uint16_t)(int16_t)(k0 >> 15) | (uint32_t)(uint16_t)(int16_t)(k1 >> 15) << 16));
    }
  }
  return 1;
}

static void free_split(split_coeffs *s) {
  free(s->lo);
  free(s->hi);
}

// One RGB row. Reads up to 7 bytes past a tap span (zero-weighted): the caller keeps the last
// image row for the scalar loop.
static void horizontal_row_rgb(const uint8_t *row, uint8_t *o, int x0, int x1, const coeffs *c, const split_coeffs *s) {
  const __m128i zero = _mm_setzero_si128();
  const __m128i half = _mm_set1_epi32(HALF);
  for (int xx = x0 - c->from; xx < x1 - c->from; xx++, o += 3) {
    const int n = c->bounds[xx * 2 + 1];
    const uint8_t *p = row + (size_t)c->bounds[xx * 2] * 3;
    const __m128i *lo = s->lo + (size_t)xx * s->stride, *hi = s->hi + (size_t)xx * s->stride;
    __m128i sl = zero, sh = zero;
    for (int q = 0; 2 * q < n; q++, p += 6) {
      int32_t a, b;
      memcpy(&a, p, 4);
      memcpy(&b, p + 3, 4);
      const __m128i pa = _mm_unpacklo_epi8(_mm_cvtsi32_si128(a), zero);
      const __m128i pb = _mm_unpacklo_epi8(_mm_cvtsi32_si128(b), zero);
      const __m128i pab = _mm_unpacklo_epi16(pa, pb);  // R R G G B B x x: taps 2q, 2q+1
      sl = _mm_add_epi32(sl, _mm_madd_epi16(pab, lo[q]));
      sh = _mm_add_epi32(sh, _mm_madd_epi16(pab, hi[q]));
    }
    int32_t v[4];
    _mm_storeu_si128((__m128i *)v, _mm_add_epi32(_mm_add_epi32(_mm_slli_epi32(sh, 15), sl), half));
    o[0] = clip8(v[0]);
    o[1] = clip8(v[1]);
    o[2] = clip8(v[2]);
  }
}
#endif

// Horizontal pass over input rows [rowFirst, rowLast) of the w x h image, output columns [x0, x1), into tmp.
static int horizontal(const uint8_t *src, int w, int h, int ch, int rowFirst, int rowLast, int x0, int x1, const coeffs *c, uint8_t *tmp) {
  const int cols = x1 - x0;
#if defined(__SSE2__)
  split_coeffs s = {0};
  const int simd = ch == 3 && w >= 3;
  if (simd && !split(c, &s)) {
    free_split(&s);
    return 0;
  }
#else
  (void)h;
#endif
  for (int y = rowFirst; y < rowLast; y++) {
    const uint8_t *row = src + (size_t)y * w * ch;
    uint8_t *o = tmp + (size_t)(y - rowFirst) * cols * ch;
#if defined(__SSE2__)
    if (simd && y + 1 < h) {
      horizontal_row_rgb(row, o, x0, x1, c, &s);
      continue;
    }
#endif
    for (int xx = x0 - c->from; xx < x1 - c->from; xx++) {
      const int xmin = c->bounds[xx * 2], n = c->bounds[xx * 2 + 1];
      const int32_t *k = c->kk + (size_t)xx * c->ksize;
      const uint8_t *p = row + (size_t)xmin * ch;
      if (ch == 3) {  // without SSE2 (e.g. arm64): RGB with one accumulator per channel
        int32_t s0 = HALF, s1 = HALF, s2 = HALF;
        for (int t = 0; t < n; t++, p += 3) {
          s0 += p[0] * k[t];
          s1 += p[1] * k[t];
          s2 += p[2] * k[t];
        }
        *o++ = clip8(s0);
        *o++ = clip8(s1);
        *o++ = clip8(s2);
        continue;
      }
      for (int b = 0; b < ch; b++) {
        int32_t ss = HALF;
        for (int t = 0; t < n; t++) ss += p[t * ch + b] * k[t];
        *o++ = clip8(ss);
      }
    }
  }
#if defined(__SSE2__)
  free_split(&s);
#endif
  return 1;
}

// One output row of the vertical pass: n rows of `stride` bytes from `rows` weighted by k.
// Accumulating a whole row per tap keeps the inner loop contiguous, so the compiler vectorises it.
static void vertical_row(const uint8_t *rows, size_t stride, size_t from, int n, const int32_t *k, int32_t *acc, uint8_t *out) {
  for (size_t i = from; i < stride; i++) acc[i] = HALF;
  for (int t = 0; t < n; t++) {
    const uint8_t *r = rows + (size_t)t * stride;
    const int32_t w = k[t];
    for (size_t i = from; i < stride; i++) acc[i] += r[i] * w;
  }
  for (size_t i = from; i < stride; i++) out[i] = clip8(acc[i]);
}

#if defined(__SSE2__)
// (sh << 15) + sl + HALF, then clip8 of four lanes: the arithmetic shift, and the saturating packs
// to int16 and uint8 clamp below 0 and above 255 as clip8 does.
static inline __m128i finish(__m128i sl, __m128i sh) {
  return _mm_srai_epi32(_mm_add_epi32(_mm_add_epi32(_mm_slli_epi32(sh, 15), sl), _mm_set1_epi32(HALF)), PRECISION_BITS);
}

// The vertical pass 16 bytes at a time with split weights (see split): rows t and t+1 interleaved
// as int16 pairs. Returns how many bytes it did; vertical_row does the rest.
static size_t vertical_row_simd(const uint8_t *rows, size_t stride, int n, const __m128i *lo, const __m128i *hi, uint8_t *out) {
  const __m128i zero = _mm_setzero_si128();
  size_t i = 0;
  for (; i + 16 <= stride; i += 16) {
    __m128i sl[4] = {zero, zero, zero, zero}, sh[4] = {zero, zero, zero, zero};
    for (int q = 0; 2 * q < n; q++) {
      const __m128i a = _mm_loadu_si128((const __m128i *)(rows + (size_t)(2 * q) * stride + i));
      const __m128i b = 2 * q + 1 < n ? _mm_loadu_si128((const __m128i *)(rows + (size_t)(2 * q + 1) * stride + i)) : zero;
      const __m128i a0 = _mm_unpacklo_epi8(a, zero), a1 = _mm_unpackhi_epi8(a, zero);
      const __m128i b0 = _mm_unpacklo_epi8(b, zero), b1 = _mm_unpackhi_epi8(b, zero);
      const __m128i p[4] = {_mm_unpacklo_epi16(a0, b0), _mm_unpackhi_epi16(a0, b0), _mm_unpacklo_epi16(a1, b1), _mm_unpackhi_epi16(a1, b1)};
      const __m128i wl = lo[q], wh = hi[q];
      for (int j = 0; j < 4; j++) {
        sl[j] = _mm_add_epi32(sl[j], _mm_madd_epi16(p[j], wl));
        sh[j] = _mm_add_epi32(sh[j], _mm_madd_epi16(p[j], wh));
      }
    }
    const __m128i v01 = _mm_packs_epi32(finish(sl[0], sh[0]), finish(sl[1], sh[1]));
    const __m128i v23 = _mm_packs_epi32(finish(sl[2], sh[2]), finish(sl[3], sh[3]));
    _mm_storeu_si128((__m128i *)(out + i), _mm_packus_epi16(v01, v23));
  }
  return i;
}
#endif

int resample_window(const uint8_t *src, int w, int h, int ch, int outW, int outH, int left, int top, int cropW, int cropH, int fi, uint8_t *out) {
  const int x0 = left > 0 ? left : 0, x1 = outW < left + cropW ? outW : left + cropW;
  const int y0 = top > 0 ? top : 0, y1 = outH < top + cropH ? outH : top + cropH;
  if (x0 >= x1 || y0 >= y1) return 1;
  const filter *fp = &FILTERS[fi];
  const int cols = x1 - x0;
  const size_t stride = (size_t)cols * ch;

  coeffs vert = {0}, hor = {0};
  uint8_t *tmp = NULL;
  int32_t *acc = NULL;
  int ok = 1;
  // Horizontal pass (skipped when the width does not change, as PIL skips it) over the input rows
  // the vertical pass reads.
  const int needV = outH != h;
  if (needV) ok = precompute(h, outH, y0, y1, fp, &vert);
  int rowFirst = y0, rowLast = y1;
  if (ok && needV) {
    rowFirst = vert.bounds[0];
    rowLast = 0;
    for (int i = 0; i < vert.n; i++) {
      int e = vert.bounds[i * 2] + vert.bounds[i * 2 + 1];
      if (e > rowLast) rowLast = e;
    }
  }
  if (ok) ok = (tmp = malloc((size_t)(rowLast - rowFirst) * stride + 1)) != NULL;
  if (ok && outW != w) {
    ok = precompute(w, outW, x0, x1, fp, &hor);
    if (ok) ok = horizontal(src, w, h, ch, rowFirst, rowLast, x0, x1, &hor, tmp);
  } else if (ok) {
    for (int y = rowFirst; y < rowLast; y++) memcpy(tmp + (size_t)(y - rowFirst) * stride, src + ((size_t)y * w + x0) * ch, stride);
  }
  if (ok && needV) ok = (acc = malloc(stride * sizeof(int32_t))) != NULL;
#if defined(__SSE2__)
  split_coeffs vs = {0};
  if (ok && needV) ok = split(&vert, &vs);
#endif
  if (ok) {
    for (int yy = y0; yy < y1; yy++) {
      uint8_t *o = out + ((size_t)(yy - top) * cropW + (x0 - left)) * ch;
      if (!needV) {
        memcpy(o, tmp + (size_t)(yy - rowFirst) * stride, stride);
      } else {
        const size_t i = (size_t)(yy - y0);
        const uint8_t *rows = tmp + (size_t)(vert.bounds[i * 2] - rowFirst) * stride;
        const int n = vert.bounds[i * 2 + 1];
        size_t done = 0;
#if defined(__SSE2__)
        done = vertical_row_simd(rows, stride, n, vs.lo + i * vs.stride, vs.hi + i * vs.stride, o);
#endif
        vertical_row(rows, stride, done, n, vert.kk + i * vert.ksize, acc, o);
      }
    }
  }
#if defined(__SSE2__)
  free_split(&vs);
#endif
  free(acc);
  free(tmp);
  free_coeffs(&vert);
  free_coeffs(&hor);
  return ok;
}
