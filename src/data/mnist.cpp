// IDX parsing (from memory, so the fuzzer reaches it) and the MNIST loaders.
#include "maas/data/mnist.hpp"

#include <filesystem>
#include <cstdint>
#include <iomanip>
#include <sstream>

#include "maas/error.hpp"

namespace maas::data {

namespace {

constexpr uint32_t kImagesMagic = 2051;  // 0x00000803: unsigned bytes, 3 dimensions
constexpr uint32_t kLabelsMagic = 2049;  // 0x00000801: unsigned bytes, 1 dimension

uint32_t be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

std::string hex(uint32_t v) {
  std::ostringstream os;
  os << "0x" << std::hex << std::setw(8) << std::setfill('0') << v;
  return os.str();
}

// The dimensions of an IDX header (magic & 0xff of them) and the bytes of
// the array it announces (saturating at UINT64_MAX: a header that claims
// more than any file can hold is not wrapped around). Checks the magic and
// that `size` bytes hold the header.
struct IdxHeader {
  std::vector<uint64_t> dims;
  std::string shape;  // "5 x 3 x 4"
  size_t header = 0;  // bytes
  uint64_t payload = 0;
};

IdxHeader parse_dims(const uint8_t* data, size_t size, const std::string& name, uint32_t magic,
                     const std::string& what, const char* who) {
  const uint32_t ndim = magic & 0xff;
  MAAS_CHECK(size >= 4, who << ": " << name << ": " << size << " bytes is too short for an IDX header");
  const uint32_t got = be32(data);
  if (got != magic) {
    std::string hint;
    if (got == kLabelsMagic) hint = "; this is a label file";
    else if (got == kImagesMagic) hint = "; this is an image file";
    else if ((got >> 8) == 0x08) hint = "; it has " + std::to_string(got & 0xff) + " dimensions, not " + std::to_string(ndim);
    else if ((got >> 16) == 0 && (got >> 8) != 0x08) hint = "; only unsigned-byte (0x08) IDX files are read";
    else hint = "; this is not an IDX file";
    MAAS_FAIL(who << ": " << name << ": wrong magic number " << got << " (" << hex(got) << "), expected " << magic
                  << " (" << hex(magic) << ") for IDX " << what << hint);
  }
  IdxHeader h;
  h.header = 4 + 4 * size_t{ndim};
  MAAS_CHECK(size >= h.header, who << ": " << name << ": truncated: " << size << " bytes is too short for the "
                                   << h.header << "-byte header of IDX " << what);
  h.dims.resize(ndim);
  std::ostringstream shape;
  h.payload = 1;
  for (uint32_t d = 0; d < ndim; ++d) {
    h.dims[d] = be32(data + 4 + 4 * d);
    shape << (d ? " x " : "") << h.dims[d];
    h.payload = h.dims[d] != 0 && h.payload > UINT64_MAX / h.dims[d] ? UINT64_MAX : h.payload * h.dims[d];
  }
  h.shape = shape.str();
  return h;
}

// Checks the magic and the length of an IDX file of unsigned bytes and
// returns its dimensions.
std::vector<uint64_t> parse_header(const uint8_t* data, size_t size, const std::string& name, uint32_t magic,
                                   const std::string& what, const char* who) {
  const IdxHeader h = parse_dims(data, size, name, magic, what, who);
  const uint64_t body = size - h.header;
  MAAS_CHECK(h.payload <= body, who << ": " << name << ": truncated: the header says " << h.shape << " " << what
                                    << " (" << h.payload << " bytes after the " << h.header
                                    << "-byte header) but the file has " << size << " bytes");
  MAAS_CHECK(h.payload == body, who << ": " << name << ": " << body - h.payload << " bytes after the " << h.shape
                                    << " " << what << " the header announces; the file is not one IDX array");
  return h.dims;
}

// Reads an IDX file, plain or gzipped, without reading past what its header
// announces: first the header, whose array must fit in kMaxIdxBytes, then at
// most one byte more than header and array, so that neither a header that
// lies nor a gzip bomb makes the buffer larger than the header's promise.
std::vector<uint8_t> read_idx_file(const std::string& path, uint32_t magic, const std::string& what,
                                   const char* who) {
  const size_t header = 4 + 4 * size_t{magic & 0xff};
  const std::vector<uint8_t> head = read_file_bytes(path, who, header);
  const IdxHeader h = parse_dims(head.data(), head.size(), path, magic, what, who);
  MAAS_CHECK(h.payload <= kMaxIdxBytes,
             who << ": " << path << ": the header says " << h.shape << " " << what << " ("
                 << (h.payload == UINT64_MAX ? std::string("over 2^64") : std::to_string(h.payload))
                 << " bytes), over the limit of " << kMaxIdxBytes << " bytes (4 GiB) an IDX file may hold");
  const size_t total = h.header + static_cast<size_t>(h.payload);
  std::vector<uint8_t> bytes = read_file_bytes(path, who, total + 1);
  MAAS_CHECK(bytes.size() <= total, who << ": " << path << ": more data after the " << h.shape << " " << what
                                        << " the header announces (" << total
                                        << " bytes in all); the file is not one IDX array");
  return bytes;
}

}  // namespace

IdxImages parse_idx_images(const uint8_t* data, size_t size, const std::string& name) {
  const std::vector<uint64_t> dims = parse_header(data, size, name, kImagesMagic, "images", "load_idx_images");
  MAAS_CHECK(dims[0] > 0, "load_idx_images: " << name << ": holds no images");
  MAAS_CHECK(dims[1] > 0 && dims[2] > 0,
             "load_idx_images: " << name << ": images of " << dims[1] << " x " << dims[2] << " pixels are empty");
  IdxImages out;
  out.count = static_cast<int64_t>(dims[0]);
  out.rows = static_cast<int64_t>(dims[1]);
  out.cols = static_cast<int64_t>(dims[2]);
  out.pixels.assign(data + 16, data + size);
  return out;
}

std::vector<uint8_t> parse_idx_labels(const uint8_t* data, size_t size, const std::string& name) {
  const std::vector<uint64_t> dims = parse_header(data, size, name, kLabelsMagic, "labels", "load_idx_labels");
  MAAS_CHECK(dims[0] > 0, "load_idx_labels: " << name << ": holds no labels");
  return std::vector<uint8_t>(data + 8, data + size);
}

IdxImages load_idx_images(const std::string& path) {
  const std::vector<uint8_t> bytes = read_idx_file(path, kImagesMagic, "images", "load_idx_images");
  return parse_idx_images(bytes.data(), bytes.size(), path);
}

std::vector<uint8_t> load_idx_labels(const std::string& path) {
  const std::vector<uint8_t> bytes = read_idx_file(path, kLabelsMagic, "labels", "load_idx_labels");
  return parse_idx_labels(bytes.data(), bytes.size(), path);
}

ImageDataset load_mnist_files(const std::string& images_path, const std::string& labels_path) {
  IdxImages images = load_idx_images(images_path);
  const std::vector<uint8_t> labels = load_idx_labels(labels_path);
  MAAS_CHECK(static_cast<int64_t>(labels.size()) == images.count,
             "load_mnist: " << images_path << " holds " << images.count << " images but " << labels_path
                            << " holds " << labels.size() << " labels");
  return ImageDataset(std::move(images.pixels), std::vector<int64_t>(labels.begin(), labels.end()),
                      {1, images.rows, images.cols});
}

ImageDataset load_mnist(const std::string& dir, Part part) {
  namespace fs = std::filesystem;
  std::error_code ec;
  MAAS_CHECK(fs::is_directory(dir, ec), "load_mnist: " << dir << ": no such directory");
  const std::string prefix = part == Part::Train ? "train" : "t10k";
  auto find = [&](const std::string& stem, const std::string& kind) {
    // train-images-idx3-ubyte, then the train-images.idx3-ubyte spelling; each plain then .gz.
    const std::string dotted = prefix + "-" + stem + "." + kind;
    const std::string dashed = prefix + "-" + stem + "-" + kind;
    for (const std::string& base : {dashed, dotted})
      for (const std::string& suffix : {std::string(""), std::string(".gz")}) {
        const fs::path p = fs::path(dir) / (base + suffix);
        if (fs::exists(p, ec)) return p.string();
      }
    MAAS_FAIL("load_mnist: " << dir << ": no " << dashed << " (nor " << dashed << ".gz, " << dotted << ", "
                             << dotted << ".gz)");
  };
  const std::string images = find("images", "idx3-ubyte");  // named first when both are missing
  const std::string labels = find("labels", "idx1-ubyte");
  return load_mnist_files(images, labels);
}

}  // namespace maas::data
