// write_file_atomically (src/core/atomic_file.hpp): the one way checkpoints
// and the training report replace a file.
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <stdexcept>
#include <string>

#include "core/atomic_file.hpp"
#include "data/temp_dir.hpp"
#include "maas/error.hpp"

using maas::Error;
using maas::detail::set_atomic_write_hook;
using maas::detail::write_file_atomically;
using maas::test::read_bytes;
using maas::test::TempDir;
namespace fs = std::filesystem;

namespace {

// The pid of a process that has exited and been reaped.
pid_t dead_pid() {
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) ::_exit(0);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return pid;
}

struct HookReset {
  ~HookReset() { set_atomic_write_hook({}); }
};

}  // namespace

TEST_CASE("write_file_atomically writes, replaces and keeps the permission bits", "[io]") {
  TempDir dir("atomic");
  const std::string path = dir / "a.bin";
  write_file_atomically(path, std::string("first\0bytes", 11), "test");
  CHECK(read_bytes(path) == std::string("first\0bytes", 11));
  ::chmod(path.c_str(), 0600);
  write_file_atomically(path, "second", "test");
  CHECK(read_bytes(path) == "second");
  struct stat st;
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  write_file_atomically(path, "", "test");
  CHECK(read_bytes(path).empty());
  CHECK(dir.entries() == std::vector<std::string>{"a.bin"});  // no temporary file left
}

TEST_CASE("write_file_atomically replaces the file a symbolic link points to, not the link", "[io]") {
  TempDir dir("atomic_link");
  write_file_atomically(dir / "real.bin", "old", "test");
  fs::create_symlink("real.bin", dir / "link.bin");
  write_file_atomically(dir / "link.bin", "new", "test");
  CHECK(fs::is_symlink(dir / "link.bin"));
  CHECK(read_bytes(dir / "real.bin") == "new");
}

TEST_CASE("write_file_atomically leaves the old file when a write fails, and no temporary file", "[io]") {
  TempDir dir("atomic_fail");
  const std::string path = dir / "keep.bin";
  write_file_atomically(path, "good", "test");
  HookReset reset;
  for (const char* stage : {"created", "written"}) {
    INFO(stage);
    set_atomic_write_hook([stage](const std::string& s) {
      if (s == stage) throw std::runtime_error("stopped at " + s);
    });
    CHECK_THROWS_WITH(write_file_atomically(path, "half", "test"), "stopped at " + std::string(stage));
    CHECK(read_bytes(path) == "good");
    CHECK(dir.entries() == std::vector<std::string>{"keep.bin"});
  }
}

TEST_CASE("write_file_atomically removes the temporary files of writers that died, only those", "[io]") {
  TempDir dir("atomic_stale");
  const std::string dead = dir / ("m.h5.tmp." + std::to_string(dead_pid()));
  const std::string alive = dir / ("m.h5.tmp." + std::to_string(::getppid()));
  const std::string other = dir / "m.h5.tmp.notapid";
  for (const std::string& p : {dead, alive, other}) write_file_atomically(p, "x", "test");
  write_file_atomically(dir / "m.h5", "model", "test");
  CHECK_FALSE(fs::exists(dead));
  CHECK(fs::exists(alive));
  CHECK(fs::exists(other));
  CHECK(read_bytes(dir / "m.h5") == "model");
}

TEST_CASE("write_file_atomically says who failed, on which path, and why", "[io]") {
  TempDir dir("atomic_errors");
  CHECK_THROWS_WITH(write_file_atomically("", "x", "save_model"), "save_model: the path is empty");
  const std::string missing = dir / "no-such-dir/m.h5";
  CHECK_THROWS_WITH(write_file_atomically(missing, "x", "save_model"),
                    Catch::StartsWith("save_model: " + missing + ": cannot create " + dir / "no-such-dir/m.h5.tmp.") &&
                        Catch::Contains("No such file or directory"));
}
