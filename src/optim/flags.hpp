// Internal: turns a run-time option flag into a compile-time one, so that an
// optimizer's element loop is instantiated once per option combination and
// has no branches in its body (branch-free loops vectorize). Not installed.
//
//   with_flag(options.centered, [&](auto kCentered) {
//     update<decltype(kCentered)::value>(...);
//   });
#pragma once

#include <type_traits>

namespace maas::optim::detail {

template <class F>
void with_flag(bool on, F&& f) {
  if (on)
    f(std::true_type{});
  else
    f(std::false_type{});
}

}  // namespace maas::optim::detail
