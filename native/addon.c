// N-API glue (see src/encoders/native-addon.ts): resize(src, w, h, channels, outW, outH, left,
// top, cropW, cropH, filter) returns resample.c's window as a new Uint8Array; chw(rgb, lut, out,
// offset) writes interleaved RGB into float planes through a per-channel table of 256 values.
#include <node_api.h>
#include <stdint.h>
#include <string.h>

#include "resample.h"

static napi_value throw_type(napi_env env, const char *msg) {
  napi_throw_type_error(env, NULL, msg);
  return NULL;
}

// The typed array's data and element count, or NULL when `v` is not a typed array of `type`.
static void *typed(napi_env env, napi_value v, napi_typedarray_type want, size_t *length) {
  bool is_typed = false;
  napi_typedarray_type type;
  void *data;
  if (napi_is_typedarray(env, v, &is_typed) != napi_ok || !is_typed) return NULL;
  if (napi_get_typedarray_info(env, v, &type, length, &data, NULL, NULL) != napi_ok || type != want) return NULL;
  return data;
}

static napi_value resize(napi_env env, napi_callback_info info) {
  size_t argc = 11;
  napi_value argv[11];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 11) return throw_type(env, "resize: 11 arguments expected");
  size_t length;
  const uint8_t *data = typed(env, argv[0], napi_uint8_array, &length);
  if (!data) return throw_type(env, "resize: src must be a Uint8Array");
  int32_t a[10];
  for (int i = 0; i < 10; i++) {
    // int64 then a range check: napi_get_value_int32 would wrap a size over 2^31 (a resized side
    // from a 1 x 40M image) to another, valid-looking one.
    int64_t v;
    if (napi_get_value_int64(env, argv[i + 1], &v) != napi_ok) return throw_type(env, "resize: integer arguments expected");
    if (v < INT32_MIN || v > INT32_MAX) return throw_type(env, "resize: sizes beyond 32 bits");
    a[i] = (int32_t)v;
  }
  const int w = a[0], h = a[1], ch = a[2], outW = a[3], outH = a[4], left = a[5], top = a[6], cropW = a[7], cropH = a[8], filter = a[9];
  if (w <= 0 || h <= 0 || ch < 1 || ch > 4 || outW <= 0 || outH <= 0 || cropW <= 0 || cropH <= 0 || filter < 0 || filter > 2 ||
      length < (size_t)w * h * ch)
    return throw_type(env, "resize: bad sizes");

  const size_t outLen = (size_t)cropW * cropH * ch;
  napi_value buffer, result;
  void *out;
  // A plain ArrayBuffer (not external memory), so that decode threads can transfer it.
  if (napi_create_arraybuffer(env, outLen, &out, &buffer) != napi_ok) return NULL;
  memset(out, 0, outLen);
  if (napi_create_typedarray(env, napi_uint8_array, outLen, buffer, 0, &result) != napi_ok) return NULL;
  if (!resample_window(data, w, h, ch, outW, outH, left, top, cropW, cropH, filter, out)) {
    napi_throw_error(env, NULL, "resize: out of memory");
    return NULL;
  }
  return result;
}

// chw(rgb: Uint8Array, lut: Float32Array(768), out: Float32Array, offset): out[offset + c * plane + i]
// = lut[c * 256 + rgb[i * 3 + c]], plane = rgb.length / 3.
static napi_value chw(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 4) return throw_type(env, "chw: 4 arguments expected");
  size_t n, lutLen, outLen;
  const uint8_t *rgb = typed(env, argv[0], napi_uint8_array, &n);
  const float *lut = typed(env, argv[1], napi_float32_array, &lutLen);
  float *out = typed(env, argv[2], napi_float32_array, &outLen);
  int64_t offset;
  if (!rgb || !lut || !out || napi_get_value_int64(env, argv[3], &offset) != napi_ok) return throw_type(env, "chw: (Uint8Array, Float32Array, Float32Array, offset) expected");
  const size_t plane = n / 3;
  if (n % 3 || lutLen != 768 || offset < 0 || (size_t)offset > outLen || outLen - (size_t)offset < n) return throw_type(env, "chw: bad sizes");
  float *r = out + offset, *g = r + plane, *b = g + plane;
  for (size_t i = 0; i < plane; i++, rgb += 3) {
    r[i] = lut[rgb[0]];
    g[i] = lut[256 + rgb[1]];
    b[i] = lut[512 + rgb[2]];
  }
  return NULL;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "resize", NAPI_AUTO_LENGTH, resize, NULL, &fn);
  napi_set_named_property(env, exports, "resize", fn);
  napi_create_function(env, "chw", NAPI_AUTO_LENGTH, chw, NULL, &fn);
  napi_set_named_property(env, exports, "chw", fn);
  return exports;
}
