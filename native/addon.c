// N-API glue for resample.c: resize(src, w, h, channels, outW, outH, left, top, cropW, cropH,
// filter) returns the window as a new Uint8Array (see resample.h and src/encoders/native-addon.ts).
#include <node_api.h>
#include <string.h>

#include "resample.h"

static napi_value throw_type(napi_env env, const char *msg) {
  napi_throw_type_error(env, NULL, msg);
  return NULL;
}

static napi_value resize(napi_env env, napi_callback_info info) {
  size_t argc = 11;
  napi_value argv[11];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 11) return throw_type(env, "resize: 11 arguments expected");
  bool is_typed = false;
  napi_is_typedarray(env, argv[0], &is_typed);
  if (!is_typed) return throw_type(env, "resize: src must be a Uint8Array");
  napi_typedarray_type type;
  size_t length;
  void *data;
  napi_get_typedarray_info(env, argv[0], &type, &length, &data, NULL, NULL);
  if (type != napi_uint8_array) return throw_type(env, "resize: src must be a Uint8Array");
  int32_t a[10];
  for (int i = 0; i < 10; i++)
    if (napi_get_value_int32(env, argv[i + 1], &a[i]) != napi_ok) return throw_type(env, "resize: integer arguments expected");
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

NAPI_MODULE_INIT() {
  napi_value fn;
  napi_create_function(env, "resize", NAPI_AUTO_LENGTH, resize, NULL, &fn);
  napi_set_named_property(env, exports, "resize", fn);
  return exports;
}
