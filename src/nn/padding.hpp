// Internal: Keras' "same" padding arithmetic, shared by Conv2D and the pools.
// Sizes may come from a file's model_config, so every product and sum is
// checked: a kernel of 2^62 with a dilation of 4 is an error, not a wrap.
#pragma once

#include <algorithm>
#include <cstdint>

#include "core/internal.hpp"

namespace maas::nn::detail {

struct SidePad {
  int64_t before = 0, after = 0;
};

// The extent of a dilated kernel: dilation * (kernel - 1) + 1.
inline int64_t kernel_span(int64_t kernel, int64_t dilation) {
  return maas::detail::checked_add(maas::detail::checked_mul(dilation, kernel - 1, "kernel span"), 1, "kernel span");
}

// Output ceil(in / stride); any odd pixel goes after (bottom/right), as Keras.
inline SidePad same_padding(int64_t in, int64_t kernel, int64_t stride, int64_t dilation) {
  const int64_t out = in / stride + (in % stride != 0 ? 1 : 0);
  const int64_t reach = maas::detail::checked_add(maas::detail::checked_mul(out - 1, stride, "same padding"),
                                                  kernel_span(kernel, dilation), "same padding");
  const int64_t total = std::max<int64_t>(reach - in, 0);
  return {total / 2, total - total / 2};
}

// Output size of a window sweep with symmetric padding `pad` per side.
inline int64_t window_out(int64_t in, int64_t kernel, int64_t stride, int64_t dilation, int64_t pad_total) {
  const int64_t padded = maas::detail::checked_add(in, pad_total, "padded size");
  const int64_t span = kernel_span(kernel, dilation);
  if (padded < span) return 0;  // the window does not fit
  return (padded - span) / stride + 1;
}

// Both sides' explicit padding: 2 * pad.
inline int64_t both_sides(int64_t pad) { return maas::detail::checked_mul(2, pad, "padding"); }

}  // namespace maas::nn::detail
