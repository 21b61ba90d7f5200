// maas/error.hpp: the one exception type maas throws, and the MAAS_CHECK macro.
//
// Every failure a user can cause (wrong shapes, bad arguments, bad files) throws
// maas::Error with a message that names the operation and the offending values.
// MAAS_CHECK is always on: it does not vanish in Release builds.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace maas {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

}  // namespace maas

// MAAS_CHECK(cond, "conv2d: input " << shape << " must be 4-D") throws maas::Error
// with the streamed message when cond is false.
#define MAAS_CHECK(cond, msg)                 \
  do {                                        \
    if (!(cond)) {                            \
      std::ostringstream maas_check_os_;      \
      maas_check_os_ << msg;                  \
      throw ::maas::Error(maas_check_os_.str()); \
    }                                         \
  } while (0)

#define MAAS_FAIL(msg) MAAS_CHECK(false, msg)
