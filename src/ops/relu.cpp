// relu and leaky_relu: y = x where x > 0, else 0 (relu) or slope * x.
//
// The forward keeps one bit per element (x > 0) for the backward instead of
// x itself: dx += bit ? dy : slope * dy then reads dy and dx only (1/32 of
// x's bytes for the bits), and x may be freed as soon as nothing else holds
// it. Both passes are split over OpenMP threads in chunks of whole 64-element
// words (one word of bits each), so no two threads touch the same word.
// At the kink (x == 0) the gradient is 0, a NaN gives 0 (relu) or NaN
// (leaky_relu) as before, and -x for x < 0 is +0 for relu, as PyTorch.
#include <omp.h>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <cstdint>
#include <memory>
#include <vector>

#include "core/internal.hpp"
#include "maas/autograd.hpp"
#include "maas/ops.hpp"

namespace maas {

namespace {

// y[i] for element i of x, with its bit.
inline float rectified(float v, float slope, bool leaky) { return v > 0.f ? v : (leaky ? v * slope : 0.f); }

// Forward over words [w0, w1) of 64 elements (the last may be partial).
void forward_words(const float* x, float* y, uint64_t* bits, int64_t n, int64_t w0, int64_t w1, float slope,
                   bool leaky) {
  for (int64_t w = w0; w < w1; ++w) {
    const int64_t i0 = w * 64;
    uint64_t word = 0;
#if defined(__AVX512F__)
    if (i0 + 64 <= n) {
      const __m512 zero = _mm512_setzero_ps(), s = _mm512_set1_ps(slope);
      for (int k = 0; k < 4; ++k) {
        const __m512 v = _mm512_loadu_ps(x + i0 + 16 * k);
        const __mmask16 pos = _mm512_cmp_ps_mask(v, zero, _CMP_GT_OQ);
        const __m512 neg = leaky ? _mm512_mul_ps(v, s) : zero;
        _mm512_storeu_ps(y + i0 + 16 * k, _mm512_mask_blend_ps(pos, neg, v));
        word |= static_cast<uint64_t>(pos) << (16 * k);
      }
      if (bits) bits[w] = word;
      continue;
    }
#endif
    const int64_t i1 = std::min(n, i0 + 64);
    for (int64_t i = i0; i < i1; ++i) {
      y[i] = rectified(x[i], slope, leaky);
      if (x[i] > 0.f) word |= uint64_t{1} << (i - i0);
    }
    if (bits) bits[w] = word;
  }
}

// dx += bit ? dy : slope * dy over words [w0, w1).
void backward_words(const float* dy, float* dx, const uint64_t* bits, int64_t n, int64_t w0, int64_t w1,
                    float slope, bool leaky) {
  for (int64_t w = w0; w < w1; ++w) {
    const int64_t i0 = w * 64;
    const uint64_t word = bits[w];
#if defined(__AVX512F__)
    if (i0 + 64 <= n) {
      const __m512 s = _mm512_set1_ps(slope);
      for (int k = 0; k < 4; ++k) {
        const __mmask16 pos = static_cast<__mmask16>(word >> (16 * k));
        const __m512 g = _mm512_loadu_ps(dy + i0 + 16 * k);
        const __m512 d = _mm512_loadu_ps(dx + i0 + 16 * k);
        const __m512 r = leaky ? _mm512_add_ps(d, _mm512_mask_blend_ps(pos, _mm512_mul_ps(g, s), g))
                               : _mm512_mask_add_ps(d, pos, d, g);
        _mm512_storeu_ps(dx + i0 + 16 * k, r);
      }
      continue;
    }
#endif
    const int64_t i1 = std::min(n, i0 + 64);
    for (int64_t i = i0; i < i1; ++i) {
      const bool pos = (word >> (i - i0)) & 1;
      dx[i] += pos ? dy[i] : (leaky ? dy[i] * slope : 0.f);
    }
  }
}

// Runs fn(w0, w1) over the words of n elements: up to 16 chunks of words,
// handed to the threads as they come free (no chunk waits on a core that
// another process holds).
template <class Fn>
void for_words(int64_t n, Fn fn) {
  const int64_t words = (n + 63) / 64, chunks = std::min<int64_t>(words, 16);
#pragma omp parallel for if (n > detail::kParallelGrain) schedule(dynamic, 1)
  for (int64_t c = 0; c < chunks; ++c) fn(words * c / chunks, words * (c + 1) / chunks);
}

Tensor rectify(const char* name, const Tensor& x, float slope, bool leaky) {
  detail::check_defined(x, name, "input");
  Tensor out = Tensor::empty(x.shape());
  const int64_t n = x.numel();
  const bool keep = autograd::needs_grad({x});
  auto bits = std::make_shared<std::vector<uint64_t>>(keep ? static_cast<size_t>((n + 63) / 64) : 0);
  const float* px = x.data();
  float* py = out.data();
  uint64_t* pbits = keep ? bits->data() : nullptr;
  for_words(n, [&](int64_t w0, int64_t w1) { forward_words(px, py, pbits, n, w0, w1, slope, leaky); });
  autograd::record(name, out, {x}, [bits, n, slope, leaky](const Tensor& dout, std::vector<Tensor>& dx) {
    if (!dx[0].defined()) return;
    const float* g = dout.data();
    float* d = dx[0].data();
    const uint64_t* pb = bits->data();
    for_words(n, [&](int64_t w0, int64_t w1) { backward_words(g, d, pb, n, w0, w1, slope, leaky); });
  });
  return out;
}

}  // namespace

Tensor relu(const Tensor& x) { return rectify("relu", x, 0.f, false); }

Tensor leaky_relu(const Tensor& x, float negative_slope) { return rectify("leaky_relu", x, negative_slope, true); }

}  // namespace maas
