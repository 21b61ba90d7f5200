// maas' header: a signature, the length of the rest and its CRC-32, in the
// 512-byte HDF5 user block at the start of the files maas writes.
#include "checkpoint/h5/internal.hpp"

#include <zlib.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "maas/error.hpp"

namespace maas::detail::h5 {

namespace {

constexpr char kMagic[8] = {'\x89', 'M', 'A', 'A', 'S', 'H', '5', '\n'};
constexpr uint32_t kHeaderVersion = 1;
constexpr uint32_t kChecksumCrc32 = 1;  // zlib's CRC-32

uint32_t crc32_of(const char* p, uint64_t n) {
  uLong crc = ::crc32(0L, Z_NULL, 0);
  while (n > 0) {
    const uInt step = static_cast<uInt>(std::min<uint64_t>(n, uint64_t{1} << 30));
    crc = ::crc32(crc, reinterpret_cast<const Bytef*>(p), step);
    p += step;
    n -= step;
  }
  return static_cast<uint32_t>(crc);
}

void put_le(char* at, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) at[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

std::string hex32(uint32_t v) {
  char b[16];
  std::snprintf(b, sizeof b, "%08x", v);
  return b;
}

}  // namespace

uint64_t get_le(const char* at, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= uint64_t{static_cast<unsigned char>(at[i])} << (8 * i);
  return v;
}

bool has_hdf5_signature(const std::string& image) {
  for (uint64_t at = 0; at + 8 <= image.size(); at = at == 0 ? 512 : at * 2)
    if (std::memcmp(image.data() + at, kHdf5Signature, 8) == 0) return true;
  return false;
}

void write_header(std::string& image) {
  char* h = &image[0];
  std::memset(h, 0, kHeaderBytes);
  std::memcpy(h, kMagic, 8);
  put_le(h + 8, kHeaderVersion, 4);
  put_le(h + 12, kChecksumCrc32, 4);
  put_le(h + 16, image.size() - kHeaderBytes, 8);
  put_le(h + 24, crc32_of(image.data() + kHeaderBytes, image.size() - kHeaderBytes), 4);
}

void check_header(const std::string& image, const Context& ctx) {
  if (image.size() < 8 || std::memcmp(image.data(), kMagic, 8) != 0) return;
  const std::string where = ctx.who + ": " + ctx.path + ": ";
  if (image.size() < kHeaderBytes)
    throw Error(where + "the file is truncated (" + std::to_string(image.size()) + " bytes, less than maas' " +
                std::to_string(kHeaderBytes) + "-byte header)");
  const uint64_t version = get_le(image.data() + 8, 4), algorithm = get_le(image.data() + 12, 4);
  if (version != kHeaderVersion || algorithm != kChecksumCrc32)
    throw Error(where + "the file is corrupted, or written by a newer maas: header version " + std::to_string(version) +
                ", checksum " + std::to_string(algorithm) + " (this maas knows 1 and 1)");
  for (uint64_t i = 28; i < kHeaderBytes; ++i)
    if (image[i] != 0)
      throw Error(where + "the file is corrupted: byte " + std::to_string(i) + " of maas' header is not zero");
  const uint64_t expected = get_le(image.data() + 16, 8);
  const uint64_t found = image.size() - kHeaderBytes;
  if (found != expected)
    throw Error(where + "the file is " + (found < expected ? "truncated or corrupted" : "corrupted") + ": " +
                std::to_string(found) + " bytes follow maas' header, which says " + std::to_string(expected));
  const uint32_t want = static_cast<uint32_t>(get_le(image.data() + 24, 4));
  const uint32_t have = crc32_of(image.data() + kHeaderBytes, found);
  if (want != have)
    throw Error(where + "the file is corrupted: checksum mismatch (CRC-32 " + hex32(have) + ", maas wrote " +
                hex32(want) + "); if another program changed it on purpose, zero its first 8 bytes to load it "
                "unchecked");
}
}  // namespace maas::detail::h5
