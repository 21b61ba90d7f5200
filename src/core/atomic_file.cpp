// write_file_atomically: temporary file, fsync, rename, stale-temp cleanup
// (atomic_file.hpp).
#include "core/atomic_file.hpp"

#include <cerrno>
#include <climits>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <vector>

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "maas/error.hpp"

namespace maas::detail {

namespace {

std::function<void(const std::string&)>& write_hook() {
  static std::function<void(const std::string&)> hook;
  return hook;
}

void reached(const char* stage) {
  if (write_hook()) write_hook()(stage);
}

std::string folder_of(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

std::string name_of(const std::string& path) {
  const size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// fsync of a file or folder; false (errno set) on failure.
bool sync_path(const std::string& path, bool folder) {
  const int fd = ::open(path.c_str(), folder ? (O_RDONLY | O_DIRECTORY | O_CLOEXEC) : (O_RDONLY | O_CLOEXEC));
  if (fd < 0) return false;
  const int r = ::fsync(fd);
  const int saved = errno;
  ::close(fd);
  errno = saved;
  return r == 0;
}

// The file a write replaces: `path`, or, when it is a symbolic link, the
// file it points to (through chains of links; it need not exist yet).
std::string write_target(const std::string& path, const std::string& who) {
  std::string target = path;
  for (int hops = 0;; ++hops) {
    struct stat st;
    if (::lstat(target.c_str(), &st) != 0 || !S_ISLNK(st.st_mode)) return target;
    MAAS_CHECK(hops < 40, who << ": " << path << ": too many levels of symbolic links");
    std::vector<char> buf(PATH_MAX + 1);
    const ssize_t n = ::readlink(target.c_str(), buf.data(), buf.size() - 1);
    MAAS_CHECK(n > 0, who << ": " << path << ": cannot read the symbolic link " << target << ": " << std::strerror(errno));
    const std::string link(buf.data(), static_cast<size_t>(n));
    target = link[0] == '/' ? link : folder_of(target) + "/" + link;
  }
}

std::string temp_stem(const std::string& target) {
  const std::string name = name_of(target);
  if (name.size() + 16 <= NAME_MAX) return name;
  uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (unsigned char c : name) h = (h ^ c) * 1099511628211ull;
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
  return name.substr(0, 200) + "~" + hex;
}

// Removes "<stem>.tmp.<pid>" files left in `folder` by writers whose process
// no longer exists. Best effort.
void remove_stale_temps(const std::string& folder, const std::string& stem) {
  DIR* d = ::opendir(folder.c_str());
  if (d == nullptr) return;
  const std::string prefix = stem + ".tmp.";
  while (const struct dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name.size() <= prefix.size() || name.size() > prefix.size() + 10 || name.compare(0, prefix.size(), prefix) != 0)
      continue;
    const std::string digits = name.substr(prefix.size());
    if (digits.find_first_not_of("0123456789") != std::string::npos) continue;
    const long pid = std::stol(digits);
    if (pid <= 0 || pid == static_cast<long>(::getpid())) continue;
    if (::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) ::unlink((folder + "/" + name).c_str());
  }
  ::closedir(d);
}

}  // namespace

void write_file_atomically(const std::string& path, const std::string& bytes, const std::string& who) {
  MAAS_CHECK(!path.empty(), who << ": the path is empty");
  const std::string target = write_target(path, who);
  const std::string folder = folder_of(target);
  const std::string stem = temp_stem(target);
  remove_stale_temps(folder, stem);
  const std::string tmp = folder + "/" + stem + ".tmp." + std::to_string(static_cast<long>(::getpid()));
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
  MAAS_CHECK(fd >= 0, who << ": " << path << ": cannot create " << tmp << ": " << std::strerror(errno));
  bool open = true;
  try {
    reached("created");
    for (size_t done = 0; done < bytes.size();) {
      const ssize_t w = ::write(fd, bytes.data() + done, bytes.size() - done);
      if (w < 0 && errno == EINTR) continue;
      MAAS_CHECK(w > 0, who << ": " << path << ": cannot write " << tmp << ": " << std::strerror(w < 0 ? errno : EIO));
      done += static_cast<size_t>(w);
    }
    reached("written");
    struct stat st;
    if (::stat(target.c_str(), &st) == 0 && S_ISREG(st.st_mode)) ::fchmod(fd, st.st_mode & 07777);
    MAAS_CHECK(::fsync(fd) == 0, who << ": " << path << ": cannot sync " << tmp << " to disk: " << std::strerror(errno));
    const int closed = ::close(fd);
    open = false;
    MAAS_CHECK(closed == 0, who << ": " << path << ": cannot write " << tmp << ": " << std::strerror(errno));
    MAAS_CHECK(std::rename(tmp.c_str(), target.c_str()) == 0,
               who << ": " << path << ": cannot rename " << tmp << " over " << target << ": " << std::strerror(errno));
  } catch (...) {
    if (open) ::close(fd);
    ::unlink(tmp.c_str());
    throw;
  }
  sync_path(folder, true);
}

void set_atomic_write_hook(std::function<void(const std::string& stage)> hook) { write_hook() = std::move(hook); }

}  // namespace maas::detail
