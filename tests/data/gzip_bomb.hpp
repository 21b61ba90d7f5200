// Test helper: gzip files that expand far beyond their size on disk.
#pragma once

#include <zlib.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "data/temp_dir.hpp"

namespace maas::test {

// One gzip member holding `bytes` (zlib's deflate with a gzip wrapper).
inline std::vector<uint8_t> gzip_member(const std::vector<uint8_t>& bytes) {
  z_stream z{};
  if (deflateInit2(&z, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY) != Z_OK)
    throw std::runtime_error("gzip_member: deflateInit2 failed");
  std::vector<uint8_t> out(deflateBound(&z, static_cast<uLong>(bytes.size())));
  z.next_in = const_cast<Bytef*>(bytes.data());
  z.avail_in = static_cast<uInt>(bytes.size());
  z.next_out = out.data();
  z.avail_out = static_cast<uInt>(out.size());
  const int rc = deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  if (rc != Z_STREAM_END) throw std::runtime_error("gzip_member: deflate failed");
  return out;
}

// A gzip bomb: `head` then `mib` MiB of zeros, as gzip members (zlib reads
// concatenated members as one stream): about 1 KB on disk per MiB.
inline void write_gzip_bomb(const std::string& path, const std::vector<uint8_t>& head, int mib) {
  std::vector<uint8_t> file = gzip_member(head);
  const std::vector<uint8_t> zeros = gzip_member(std::vector<uint8_t>(size_t{1} << 20, 0));
  for (int k = 0; k < mib; ++k) file.insert(file.end(), zeros.begin(), zeros.end());
  write_file(path, file);
}

}  // namespace maas::test
