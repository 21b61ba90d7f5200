// Internal: what Sequential and Model share for naming layers and printing
// summaries.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "maas/nn/module.hpp"
#include "maas/tensor.hpp"

namespace maas::nn::detail {

// Keras' snake case for default layer names: "MaxPooling2D" -> "max_pooling2d".
std::string snake_case(const std::string& name);
// 1234567 -> "1,234,567".
std::string with_commas(int64_t n);
// As Keras prints shapes: images (C, H, W) as channels_last (None, H, W, C).
std::string channels_last_shape_string(const Shape& s);
// The batch shapes of several inputs, for messages: "(None, 4), (None, 3)".
inline std::string shapes_text(const std::vector<Shape>& shapes) {
  std::string s;
  for (size_t k = 0; k < shapes.size(); ++k) s += (k ? ", " : "") + batch_shape_string(shapes[k]);
  return s;
}

}  // namespace maas::nn::detail
