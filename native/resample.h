// PIL's resampler over a crop window (resample.c).
#ifndef MEGAPAIRS_RESAMPLE_H
#define MEGAPAIRS_RESAMPLE_H
#include <stdint.h>

// The window [left, left+cropW) x [top, top+cropH) of the w x h, ch-band image `src` resized to
// outW x outH as PIL.Image.resize does (filter 0 bilinear, 1 bicubic, 2 lanczos3), into `out`
// (cropW * cropH * ch bytes, zeroed by the caller: window pixels outside the image stay 0).
// Returns 0 when memory runs out.
int resample_window(const uint8_t *src, int w, int h, int ch, int outW, int outH, int left, int top, int cropW, int cropH, int filter, uint8_t *out);

#endif
