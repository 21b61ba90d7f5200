// Internal to src/train/: how the trainer and its printing callbacks format
// what they print.
#pragma once

#include <string>

#include "maas/callbacks.hpp"

namespace maas::detail {

// A number as JSON: "%.9g", null for NaN and Inf.
std::string json_number(double v);
// The values the progress bar and the lines show, in this order: loss,
// accuracy, val_loss, val_accuracy (those present).
Logs shown(const Logs& logs);

}  // namespace maas::detail
