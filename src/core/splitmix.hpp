// Internal: SplitMix64 (Steele, Lea and Flood 2014), the seed mixer maas
// derives its per-epoch, per-batch and per-element random streams with; the
// same numbers on every platform and standard library. Not installed.
#pragma once

#include <cstdint>

namespace maas::detail {

// SplitMix64's finaliser: a bijection of 64-bit words that scatters every
// input bit over the output.
inline uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// One SplitMix64 step from state x: the golden-ratio increment, then mix64.
inline uint64_t splitmix64(uint64_t x) { return mix64(x + 0x9E3779B97F4A7C15ULL); }

}  // namespace maas::detail
