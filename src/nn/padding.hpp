// Internal: Keras' "same" padding arithmetic, shared by Conv2D and the pools.
#pragma once

#include <algorithm>
#include <cstdint>

namespace maas::nn::detail {

struct SidePad {
  int64_t before = 0, after = 0;
};

// Output ceil(in / stride); any odd pixel goes after (bottom/right), as Keras.
inline SidePad same_padding(int64_t in, int64_t kernel, int64_t stride, int64_t dilation) {
  const int64_t out = (in + stride - 1) / stride;
  const int64_t total = std::max<int64_t>((out - 1) * stride + dilation * (kernel - 1) + 1 - in, 0);
  return {total / 2, total - total / 2};
}

// Output size of a window sweep with symmetric padding `pad` per side.
inline int64_t window_out(int64_t in, int64_t kernel, int64_t stride, int64_t dilation, int64_t pad_total) {
  return (in + pad_total - dilation * (kernel - 1) - 1) / stride + 1;
}

}  // namespace maas::nn::detail
