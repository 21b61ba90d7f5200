// Internal: per-thread scratch buffers for the kernels of the ops (packed
// GEMM operands, column matrices, partial sums). Not installed.
#pragma once

#include <cstdint>
#include <type_traits>

namespace maas::detail {

// A per-thread scratch buffer of at least n floats, 64-byte aligned, kept
// for the thread's lifetime (grown, never shrunk): steady-state training
// steps allocate nothing. A slot names one buffer per thread; its contents
// are not preserved from one call of scratch() to the next for that slot.
enum ScratchSlot {
  kScratchShared = 0,   // filled by the calling thread before a parallel region, read by all
  kScratchShared2 = 1,  // a second one
  kScratchCol = 2,      // per-thread buffers of a kernel
  kScratchTmp = 3,
  kScratchTmp2 = 4,
  kScratchTmp3 = 5,
  kScratchPackA = 6,  // used inside gemm_drive (sgemm, bf16_gemm)
  kScratchPackB = 7,  // used inside gemm_drive (sgemm, bf16_gemm)
  kScratchSlots = 8
};
float* scratch(ScratchSlot slot, int64_t n);
// The same buffer as n words of another 4-byte type (packed bf16 pairs).
template <class T>
T* scratch_as(ScratchSlot slot, int64_t n) {
  static_assert(sizeof(T) == sizeof(float) && std::is_trivial_v<T>, "scratch holds 4-byte words");
  return reinterpret_cast<T*>(scratch(slot, n));
}

}  // namespace maas::detail
