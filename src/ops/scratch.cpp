// The per-thread scratch buffers of ops/scratch.hpp.
#include "ops/scratch.hpp"

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <new>

namespace maas::detail {

namespace {

struct FreeDeleter {
  void operator()(float* p) const { std::free(p); }
};
thread_local std::unique_ptr<float, FreeDeleter> t_scratch[kScratchSlots];
thread_local int64_t t_scratch_size[kScratchSlots] = {};

}  // namespace

float* scratch(ScratchSlot slot, int64_t n) {
  auto& buf = t_scratch[slot];
  int64_t& size = t_scratch_size[slot];
  if (n > size || !buf) {
    // Grown by at least a quarter, in whole KB: aligned_alloc takes a
    // multiple of the alignment (ASan refuses anything else).
    const int64_t want = (std::max<int64_t>({n, 1, size * 5 / 4}) + 1023) / 1024 * 1024;
    buf.reset(static_cast<float*>(std::aligned_alloc(64, static_cast<size_t>(want) * sizeof(float))));
    if (!buf) throw std::bad_alloc();
    size = want;
  }
  return buf.get();
}

}  // namespace maas::detail
