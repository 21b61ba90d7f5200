// Damaged and hostile HDF5 files: none may crash or hang the process, none
// may make maas read another file, and each gives a maas::Error naming the
// file. The files are generated here: maas' own files with a byte changed
// (the global heap that libhdf5 trusts), and files built with the HDF5 C API
// (external links, external storage, virtual datasets, declared sizes out of
// proportion to the bytes stored). Also: HDF5 identifiers are all closed
// after failures, and saving writes through symlinks, cleans up the
// temporary files of killed saves and accepts the longest legal file names.
#include <catch2/catch.hpp>

#include <hdf5.h>

#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "data/temp_dir.hpp"
#include "maas/checkpoint.hpp"
#include "maas/maas.hpp"
#include "maas/optim/adam.hpp"
#include "gradcheck.hpp"

using namespace maas;
using maas::test::error_of;
using namespace maas::nn;
using maas::test::read_bytes;
using maas::test::TempDir;
using maas::test::write_bytes;
namespace fs = std::filesystem;

namespace {

std::shared_ptr<Sequential> tiny_model(uint64_t seed) {
  manual_seed(seed);
  auto m = std::make_shared<Sequential>(Shape{1, 6, 6});
  m->add(Conv2D(4, 3)).add(ReLU()).add(Flatten()).add(Dropout(0.2f)).add(Dense(3));
  return m;
}

// One step of `opt` on `m`, so that its state (Adam's moments) exists.
void step(nn::Module& m, optim::Optimizer& opt) {
  sum(m.forward(Tensor::ones({2, 1, 6, 6}))).backward();
  opt.step();
}


// Removes the maas header's signature from a file maas wrote, so that it
// reads as a file of another program (Keras): no whole-file checksum, the
// HDF5 structure alone. A file without one is left as it is.
std::string unsealed(std::string bytes) {
  if (bytes.size() >= 8 && bytes.compare(0, 8, "\x89MAASH5\n") == 0) std::memset(&bytes[0], 0, 8);
  return bytes;
}

void unseal(const std::string& path) { write_bytes(path, unsealed(read_bytes(path))); }

// The offset of the first global heap collection ("GCOL"): maas' variable-
// length strings (model_config, the optimizer's name, generator states) live
// there. Layout: signature, version, 3 reserved bytes, the collection's size
// (8 bytes); then objects: index (2), references (2), reserved (4), size (8).
size_t global_heap(const std::string& bytes) {
  const size_t at = bytes.find("GCOL");
  REQUIRE(at != std::string::npos);
  return at;
}

// The offset of the size field of the global heap object holding the model's
// JSON model_config.
size_t config_object_size(const std::string& bytes) {
  const size_t gcol = global_heap(bytes);
  for (size_t at = gcol + 16; at + 16 < bytes.size();) {
    uint64_t size = 0;
    std::memcpy(&size, &bytes[at + 8], 8);
    if (bytes[at + 16] == '{') return at + 8;
    REQUIRE(size < bytes.size());
    at += 16 + (size + 7) / 8 * 8;
  }
  FAIL("no model_config in the global heap");
  return 0;
}

int64_t open_hdf5_ids() { return static_cast<int64_t>(H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL)); }

// Replaces dataset `name` in an existing HDF5 file by one made by `make`.
void replace_dataset(const std::string& path, const std::string& name, const std::function<hid_t(hid_t file)>& make) {
  const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  REQUIRE(f >= 0);
  REQUIRE(H5Ldelete(f, name.c_str(), H5P_DEFAULT) >= 0);
  const hid_t d = make(f);
  REQUIRE(d >= 0);
  H5Dclose(d);
  REQUIRE(H5Fclose(f) >= 0);
}

}  // namespace

TEST_CASE("A damaged global heap in a file maas wrote gives an error, not a crash or a hang", "[io]") {
  TempDir dir("h5hostile");
  auto m = tiny_model(1);
  const std::string good = dir / "m.h5";
  save_model(*m, good);
  const std::string bytes = read_bytes(good);
  const size_t gcol = global_heap(bytes);
  // Files that libhdf5 must not parse unchecked: with maas' header (the
  // whole-file checksum catches the change before libhdf5 reads anything) and
  // without it (as a file of another program: a separate process reads it).
  for (bool sealed : {true, false}) {
    INFO((sealed ? "with maas' checksum" : "without maas' checksum"));
    SECTION(std::string("an object's size: libhdf5 copies out of bounds") + (sealed ? " (sealed)" : "")) {
      std::string bad = sealed ? bytes : unsealed(bytes);
      bad[config_object_size(bytes) + 2] ^= 0x10;  // model_config's size += 1 MiB
      write_bytes(dir / "bad.h5", bad);
      const std::string msg = error_of([&] { load_model(dir / "bad.h5"); });
      CHECK_THAT(msg, Catch::StartsWith("load_model: " + (dir / "bad.h5") + ": "));
      CHECK_THAT(msg, Catch::Contains(sealed ? "checksum" : "libhdf5"));
    }
    SECTION(std::string("the collection's size: libhdf5 loops forever") + (sealed ? " (sealed)" : "")) {
      std::string bad = sealed ? bytes : unsealed(bytes);
      bad[gcol + 8 + 1] ^= 0x01;  // the collection's size += 256
      write_bytes(dir / "bad.h5", bad);
      detail::set_hdf5_read_timeout(1.0);
      const std::string msg = error_of([&] { load_model(dir / "bad.h5"); });
      detail::set_hdf5_read_timeout(0);
      CHECK_THAT(msg, Catch::StartsWith("load_model: " + (dir / "bad.h5") + ": "));
      if (sealed) CHECK_THAT(msg, Catch::Contains("checksum"));
    }
  }
  load_model(good);  // the process is fine
}

TEST_CASE("Files maas writes carry a whole-file checksum that catches any changed byte", "[io]") {
  TempDir dir("h5hostile");
  auto m = tiny_model(2);
  optim::Adam adam(m->parameters());
  step(*m, adam);
  const std::string path = dir / "c.h5";
  save_checkpoint(path, *m, adam);
  const std::string bytes = read_bytes(path);
  REQUIRE(bytes.compare(0, 8, "\x89MAASH5\n") == 0);
  // One changed byte anywhere after the header's signature (a changed
  // signature makes it a file of another program, whose HDF5 structure is
  // still checked), including unfiltered scalars (Adam's step count) that no
  // HDF5 checksum covers: sample positions across the file.
  for (size_t at = 8; at < bytes.size(); at += bytes.size() / 97 + 1) {
    std::string bad = bytes;
    bad[at] ^= 0x01;
    write_bytes(dir / "bad.h5", bad);
    auto other = tiny_model(2);
    optim::Adam a2(other->parameters());
    const std::string msg = error_of([&] { load_checkpoint(dir / "bad.h5", *other, a2); });
    INFO("byte " << at << ": " << msg);
    CHECK_THAT(msg, Catch::StartsWith("load_checkpoint: " + (dir / "bad.h5") + ": "));
  }
  // Cut short.
  write_bytes(dir / "cut.h5", bytes.substr(0, bytes.size() - 1));
  CHECK_THAT(error_of([&] { load_model(dir / "cut.h5"); }), Catch::Contains("truncated"));
}

TEST_CASE("Only regular files are read: a named pipe fails at once", "[io]") {
  TempDir dir("h5hostile");
  const std::string fifo = dir / "pipe.h5";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  CHECK_THAT(error_of([&] { load_model(fifo); }), Catch::Contains("not a regular file"));
  auto m = tiny_model(3);
  CHECK_THAT(error_of([&] { load_weights(*m, fifo); }), Catch::Contains("not a regular file"));
  CHECK_THAT(error_of([&] { load_model(dir.path.string()); }), Catch::Contains("directory"));
}

TEST_CASE("External links, external storage and virtual datasets are refused: maas reads no other file", "[io]") {
  TempDir dir("h5hostile");
  auto m = tiny_model(4);
  const std::string good = dir / "w.h5";
  save_weights(*m, good);
  unseal(good);
  const std::string path = dir / "hostile.h5";
  const std::string kernel = "dense/dense/kernel:0";  // (64, 3)

  SECTION("an external link to a named pipe") {
    const std::string fifo = dir / "pipe";
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    fs::copy_file(good, path);
    const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    REQUIRE(f >= 0);
    REQUIRE(H5Ldelete(f, "dense", H5P_DEFAULT) >= 0);
    REQUIRE(H5Lcreate_external(fifo.c_str(), "/dense", f, "dense", H5P_DEFAULT, H5P_DEFAULT) >= 0);
    H5Fclose(f);
    const std::string msg = error_of([&] { load_weights(*m, path); });
    CHECK_THAT(msg, Catch::StartsWith("load_weights: " + path + ": "));
    CHECK_THAT(msg, Catch::Contains("external link"));
  }
  SECTION("an external link to /etc/hostname") {
    fs::copy_file(good, path);
    const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    REQUIRE(f >= 0);
    REQUIRE(H5Lcreate_external("/etc/hostname", "/", f, "elsewhere", H5P_DEFAULT, H5P_DEFAULT) >= 0);
    H5Fclose(f);
    CHECK_THAT(error_of([&] { load_weights(*m, path); }), Catch::Contains("external link"));
  }
  SECTION("external raw storage in /dev/urandom") {
    fs::copy_file(good, path);
    replace_dataset(path, kernel, [](hid_t f) {
      const hsize_t dims[2] = {64, 3};
      const hid_t space = H5Screate_simple(2, dims, nullptr);
      const hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
      H5Pset_external(dcpl, "/dev/urandom", 0, 64 * 3 * 4);
      const hid_t d = H5Dcreate2(f, "dense/dense/kernel:0", H5T_IEEE_F32LE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
      H5Pclose(dcpl);
      H5Sclose(space);
      return d;
    });
    const std::string msg = error_of([&] { load_weights(*m, path); });
    CHECK_THAT(msg, Catch::StartsWith("load_weights: " + path + ": "));
    CHECK_THAT(msg, Catch::Contains("external storage"));
  }
  SECTION("a virtual dataset") {
    fs::copy_file(good, path);
    const std::string source = good;
    replace_dataset(path, kernel, [&](hid_t f) {
      const hsize_t dims[2] = {64, 3};
      const hid_t space = H5Screate_simple(2, dims, nullptr);
      const hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
      H5Pset_virtual(dcpl, space, source.c_str(), "/dense/dense/kernel:0", space);
      const hid_t d = H5Dcreate2(f, "dense/dense/kernel:0", H5T_IEEE_F32LE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
      H5Pclose(dcpl);
      H5Sclose(space);
      return d;
    });
    CHECK_THAT(error_of([&] { load_weights(*m, path); }), Catch::Contains("virtual dataset"));
  }
}

TEST_CASE("A dataset declared far larger than the bytes stored fails before anything is allocated", "[io]") {
  TempDir dir("h5hostile");
  auto m = tiny_model(5);
  optim::Adam adam(m->parameters());
  step(*m, adam);
  const std::string path = dir / "c.h5";
  save_checkpoint(path, *m, adam);
  unseal(path);
  // Adam's first moment of the first weight: (1e6, 1e6) floats, chunked,
  // nothing written (a few hundred bytes in the file).
  replace_dataset(path, "optimizer_weights/0/exp_avg", [](hid_t f) {
    const hsize_t dims[2] = {1000000, 1000000};
    const hsize_t chunk[2] = {1000, 1000};
    const hid_t space = H5Screate_simple(2, dims, nullptr);
    const hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, 2, chunk);
    const hid_t d = H5Dcreate2(f, "optimizer_weights/0/exp_avg", H5T_IEEE_F32LE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    H5Pclose(dcpl);
    H5Sclose(space);
    return d;
  });
  REQUIRE(fs::file_size(path) < 100000);
  auto other = tiny_model(5);
  optim::Adam a2(other->parameters());
  const std::string msg = error_of([&] { load_checkpoint(path, *other, a2); });
  CHECK_THAT(msg, Catch::StartsWith("load_checkpoint: " + path + ": "));
  CHECK_THAT(msg, Catch::Contains("(1000000, 1000000)"));
}

TEST_CASE("Failed loads and saves leave no HDF5 identifier open", "[io]") {
  TempDir dir("h5hostile");
  auto m = tiny_model(6);
  const std::string good = dir / "m.h5";
  save_model(*m, good);
  const std::string bytes = unsealed(read_bytes(good));
  std::string bad = bytes;
  for (size_t i = 20; i < 28; ++i) bad[512 + i] ^= 0x33;  // the superblock (after maas' header)
  write_bytes(dir / "bad.h5", bad);
  std::string cut = bytes.substr(0, bytes.size() / 2);
  write_bytes(dir / "cut.h5", cut);
  const int64_t before = open_hdf5_ids();
  for (int round = 0; round < 3; ++round) {
    CHECK_THAT(error_of([&] { load_model(dir / "bad.h5"); }), Catch::Contains("bad.h5"));
    CHECK_THAT(error_of([&] { load_model(dir / "cut.h5"); }), Catch::Contains("cut.h5"));
    load_model(good);
  }
  CHECK(open_hdf5_ids() == before);

  // A save that cannot write all its bytes (as on a full disk): a file-size
  // limit below the file's size.
  struct rlimit saved;
  REQUIRE(::getrlimit(RLIMIT_FSIZE, &saved) == 0);
  void (*old_handler)(int) = std::signal(SIGXFSZ, SIG_IGN);
  struct rlimit small = saved;
  small.rlim_cur = 4096;
  REQUIRE(::setrlimit(RLIMIT_FSIZE, &small) == 0);
  const std::string msg = error_of([&] { save_model(*m, dir / "full.h5"); });
  ::setrlimit(RLIMIT_FSIZE, &saved);
  std::signal(SIGXFSZ, old_handler);
  CHECK_THAT(msg, Catch::StartsWith("save_model: " + (dir / "full.h5") + ": "));
  CHECK(!fs::exists(dir / "full.h5"));
  CHECK(open_hdf5_ids() == before);
}

TEST_CASE("After failed loads and a failed save, the process prints nothing, at exit either", "[io]") {
  TempDir dir("h5hostile");
  auto m = tiny_model(9);
  const std::string good = dir / "m.h5";
  save_model(*m, good);
  std::string bad = unsealed(read_bytes(good));
  for (size_t i = 20; i < 28; ++i) bad[512 + i] ^= 0x33;  // the superblock's checksum fails
  write_bytes(dir / "bad.h5", bad);
  const std::string err = dir / "stderr.txt";
  std::fflush(nullptr);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    // A process of its own, so that its exit (libhdf5 closing) can be watched.
    std::FILE* f = std::freopen(err.c_str(), "w", stderr);
    int code = f == nullptr ? 3 : 0;
    try {
      load_model(dir / "bad.h5");
      code = 4;
    } catch (const Error&) {
    }
    std::signal(SIGXFSZ, SIG_IGN);
    struct rlimit small = {4096, 4096};
    ::setrlimit(RLIMIT_FSIZE, &small);
    try {
      save_model(*m, dir / "full.h5");
      code = 5;
    } catch (const Error&) {
    }
    std::exit(code);
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(read_bytes(err).empty());
}

TEST_CASE("Saving writes through a symlink, removes temporary files of killed saves, takes 253-character names", "[io]") {
  TempDir dir("h5hostile");
  auto a = tiny_model(7);
  auto b = tiny_model(8);

  SECTION("a symlink: the link stays, its target is replaced") {
    fs::create_directories(dir / "real");
    save_model(*a, dir / "real/m.h5");
    fs::create_symlink("real/m.h5", dir / "link.h5");
    save_model(*b, dir / "link.h5");
    CHECK(fs::is_symlink(dir / "link.h5"));
    CHECK(fs::read_symlink(dir / "link.h5") == "real/m.h5");
    const std::string expected = dir / "direct.h5";
    save_model(*b, expected);
    CHECK(read_bytes(dir / "real/m.h5") == read_bytes(expected));
    load_model(dir / "link.h5");
    // A link whose target does not exist yet: created through it.
    fs::create_symlink("real/new.h5", dir / "dangling.h5");
    save_model(*b, dir / "dangling.h5");
    CHECK(fs::is_symlink(dir / "dangling.h5"));
    CHECK(read_bytes(dir / "real/new.h5") == read_bytes(expected));
  }
  SECTION("temporary files of saves whose process is gone are removed") {
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) ::_exit(0);
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    const std::string path = dir / "m.h5";
    const std::string stale = path + ".tmp." + std::to_string(child);
    const std::string alive = path + ".tmp." + std::to_string(::getppid());
    const std::string unrelated = dir / "other.h5.tmp." + std::to_string(child);
    for (const std::string& p : {stale, alive, unrelated}) write_bytes(p, "partial");
    save_model(*a, path);
    CHECK(!fs::exists(stale));
    CHECK(fs::exists(alive));
    CHECK(fs::exists(unrelated));
  }
  SECTION("a 253-character name") {
    const std::string name = std::string(250, 'm') + ".h5";
    save_model(*a, dir / name);
    save_model(*b, dir / name);
    load_model(dir / name);
    CHECK(dir.entries() == std::vector<std::string>{name});
  }
}
