// Reading a file's image in a child process (see the top of h5.hpp): the
// Walker that reads every group, attribute and dataset within the limits
// below, and the fork, pipe and timeout around it.
#include "checkpoint/h5/internal.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <map>

#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include "maas/error.hpp"

namespace maas::detail::h5 {

namespace {

double g_read_timeout = 0;

// Limits on what a file may make maas allocate: a dataset may declare at
// most kSlackBytes + kMaxExpansion times the bytes it stores (deflate
// compresses at most ~1000:1), and all that is read from a file at most
// kTotalSlack + kTotalExpansion times its size.
constexpr uint64_t kSlackBytes = uint64_t{1} << 20;
constexpr uint64_t kMaxExpansion = 1024;
constexpr uint64_t kTotalSlack = uint64_t{16} << 20;
constexpr uint64_t kTotalExpansion = 64;
constexpr int kMaxDepth = 256;

// ---- Walking a file (in the child process) ----------------------------------------

Shape space_shape(hid_t space) {
  const int rank = H5Sget_simple_extent_ndims(space);
  if (rank < 0) return {-1};
  std::vector<hsize_t> dims(static_cast<size_t>(rank));
  if (rank > 0) H5Sget_simple_extent_dims(space, dims.data(), nullptr);
  Shape s;
  for (hsize_t d : dims) s.push_back(d > static_cast<hsize_t>(INT64_MAX) ? -1 : static_cast<int64_t>(d));
  return s;
}

struct LinkSeen {
  std::string name;
  H5L_type_t type;
};

herr_t collect_link(hid_t, const char* name, const H5L_info_t* info, void* out) {
  static_cast<std::vector<LinkSeen>*>(out)->push_back({name, info->type});
  return 0;
}

class Walker {
 public:
  Walker(hid_t file, uint64_t image_bytes, const Context& ctx)
      : file_(file), image_bytes_(image_bytes), ctx_(ctx),
        budget_(kTotalSlack + kTotalExpansion * image_bytes) {}

  Tree walk() {
    Handle root = checked(H5Gopen2(file_, "/", H5P_DEFAULT), ctx_, "cannot open the root group");
    tree_.nodes.emplace_back();
    H5O_info_t info;
    if (H5Oget_info2(static_cast<hid_t>(root.id()), &info, H5O_INFO_BASIC) < 0)
      fail_in(ctx_, "cannot read the root group");
    seen_[info.addr] = 0;
    group(static_cast<hid_t>(root.id()), 0, "/", 0);
    return std::move(tree_);
  }

 private:
  // Counts `bytes` against what this file may make maas hold.
  void spend(uint64_t bytes, const std::string& what) {
    if (bytes > budget_)
      throw Error(ctx_.who + ": " + ctx_.path + ": " + what + " makes the file hold more data than maas reads from a " +
                  std::to_string(image_bytes_) + "-byte file: it is damaged or was made to exhaust memory");
    budget_ -= bytes;
  }

  static std::string join(const std::string& path, const std::string& name) {
    return (path == "/" ? "/" : path + "/") + name;
  }

  void group(hid_t g, size_t node, const std::string& path, int depth) {
    if (depth > kMaxDepth)
      throw Error(ctx_.who + ": " + ctx_.path + ": groups nested more than " + std::to_string(kMaxDepth) +
                  " deep at " + path);
    // Attributes.
    H5O_info_t info;
    if (H5Oget_info2(g, &info, H5O_INFO_NUM_ATTRS) < 0) fail_in(ctx_, "cannot read group " + path);
    for (hsize_t i = 0; i < info.num_attrs; ++i) {
      Handle a = checked(H5Aopen_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, H5P_DEFAULT, H5P_DEFAULT),
                         ctx_, "cannot open an attribute of " + path);
      const ssize_t len = H5Aget_name(static_cast<hid_t>(a.id()), 0, nullptr);
      if (len < 0) fail_in(ctx_, "cannot read an attribute's name in " + path);
      std::string name(static_cast<size_t>(len) + 1, '\0');
      H5Aget_name(static_cast<hid_t>(a.id()), name.size(), &name[0]);
      name.resize(static_cast<size_t>(len));
      spend(name.size() + 64, "attribute '" + name + "' of " + path);
      Attribute attr;
      try {
        attribute(static_cast<hid_t>(a.id()), name, path, attr);
      } catch (const Error& e) {
        attr = Attribute();
        attr.error = e.what();
      }
      tree_.nodes[node].attributes[name] = std::move(attr);
    }
    // Links.
    std::vector<LinkSeen> links;
    hsize_t idx = 0;
    if (H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, &idx, collect_link, &links) < 0)
      fail_in(ctx_, "cannot list the members of group " + path);
    for (const LinkSeen& l : links) {
      const std::string child = join(path, l.name);
      spend(l.name.size() + 64, "member " + child);
      if (l.type == H5L_TYPE_EXTERNAL)
        throw Error(ctx_.who + ": " + ctx_.path + ": " + child +
                    " is an external link to another file: maas reads no other file (refused)");
      if (l.type == H5L_TYPE_SOFT) continue;  // an alias inside the file: not followed
      if (l.type != H5L_TYPE_HARD)
        throw Error(ctx_.who + ": " + ctx_.path + ": " + child + " is a user-defined link: maas does not follow it");
      Handle o = checked(H5Oopen(g, l.name.c_str(), H5P_DEFAULT), ctx_, "cannot open " + child);
      H5O_info_t oi;
      if (H5Oget_info2(static_cast<hid_t>(o.id()), &oi, H5O_INFO_BASIC) < 0) fail_in(ctx_, "cannot read " + child);
      const auto known = seen_.find(oi.addr);
      if (known != seen_.end()) {
        tree_.nodes[node].links[l.name] = known->second;
        continue;
      }
      const H5I_type_t type = H5Iget_type(static_cast<hid_t>(o.id()));
      if (type != H5I_GROUP && type != H5I_DATASET) continue;  // named datatypes
      const size_t n = tree_.nodes.size();
      tree_.nodes.emplace_back();
      tree_.nodes[node].links[l.name] = n;
      seen_[oi.addr] = n;
      if (type == H5I_GROUP) {
        group(static_cast<hid_t>(o.id()), n, child, depth + 1);
      } else {
        tree_.nodes[n].group = false;
        dataset(static_cast<hid_t>(o.id()), n, child);
      }
    }
  }

  void attribute(hid_t a, const std::string& name, const std::string& path, Attribute& out) {
    const std::string what = "attribute '" + name + "' of " + path;
    Handle type = checked(H5Aget_type(a), ctx_, "cannot read the type of " + what);
    Handle space = checked(H5Aget_space(a), ctx_, "cannot read the shape of " + what);
    const hid_t ftype = static_cast<hid_t>(type.id());
    const hssize_t n = H5Sget_simple_extent_npoints(static_cast<hid_t>(space.id()));
    if (n < 0) fail_in(ctx_, "cannot read the shape of " + what);
    out.count = static_cast<uint64_t>(n);
    const H5T_class_t cls = H5Tget_class(ftype);
    const size_t width = H5Tget_size(ftype);
    if (cls == H5T_STRING) {
      out.kind = Attribute::kStrings;
      if (n == 0) return;
      const htri_t is_vlen = H5Tis_variable_str(ftype);
      if (is_vlen < 0) fail_in(ctx_, "cannot read the type of " + what);
      if (is_vlen > 0) {
        spend(out.count * sizeof(char*), what);
        Handle mtype = checked(H5Tcopy(H5T_C_S1), ctx_, "cannot make a string type");
        H5Tset_size(static_cast<hid_t>(mtype.id()), H5T_VARIABLE);
        H5Tset_cset(static_cast<hid_t>(mtype.id()), H5Tget_cset(ftype));
        std::vector<char*> ptrs(out.count, nullptr);
        if (H5Aread(a, static_cast<hid_t>(mtype.id()), ptrs.data()) < 0) fail_in(ctx_, "cannot read " + what);
        bool over = false;
        for (char* p : ptrs) {
          if (p != nullptr && !over) {
            const size_t len = std::strlen(p);
            if (len > budget_) over = true;
            else {
              budget_ -= len;
              out.strings.emplace_back(p, len);
            }
          } else if (!over) {
            out.strings.emplace_back();
          }
          if (p != nullptr) H5free_memory(p);
        }
        if (over) spend(UINT64_MAX, what);
        return;
      }
      if (width == 0) fail_in(ctx_, "cannot read the type of " + what);
      if (out.count > UINT64_MAX / width) spend(UINT64_MAX, what);
      spend(width * out.count, what);
      const H5T_str_t pad = H5Tget_strpad(ftype);
      std::vector<char> buf(width * out.count);
      if (H5Aread(a, ftype, buf.data()) < 0) fail_in(ctx_, "cannot read " + what);
      for (uint64_t i = 0; i < out.count; ++i) {
        const char* p = buf.data() + i * width;
        size_t len = 0;
        while (len < width && p[len] != '\0') ++len;
        if (pad == H5T_STR_SPACEPAD)
          while (len > 0 && p[len - 1] == ' ') --len;
        out.strings.emplace_back(p, len);
      }
      return;
    }
    if (cls == H5T_INTEGER || cls == H5T_FLOAT) {
      out.kind = Attribute::kNumbers;
      out.integer = cls == H5T_INTEGER;
      if (n == 0) return;
      if (out.count > UINT64_MAX / 16) spend(UINT64_MAX, what);
      spend(out.count * (out.integer ? 16 : 8), what);
      out.numbers.resize(out.count);
      if (H5Aread(a, H5T_NATIVE_DOUBLE, out.numbers.data()) < 0) fail_in(ctx_, "cannot read " + what);
      if (out.integer) {
        out.ints.resize(out.count);
        if (H5Aread(a, H5T_NATIVE_INT64, out.ints.data()) < 0) fail_in(ctx_, "cannot read " + what);
      }
      return;
    }
    out.kind = Attribute::kOther;
  }

  void dataset(hid_t d, size_t node, const std::string& path) {
    Handle dcpl = checked(H5Dget_create_plist(d), ctx_, "cannot read the properties of dataset " + path);
    const hid_t p = static_cast<hid_t>(dcpl.id());
    if (H5Pget_layout(p) == H5D_VIRTUAL)
      throw Error(ctx_.who + ": " + ctx_.path + ": dataset " + path +
                  " is a virtual dataset (its data are read from other datasets or files): maas refuses it");
    const int external = H5Pget_external_count(p);
    if (external != 0)
      throw Error(ctx_.who + ": " + ctx_.path + ": dataset " + path +
                  " keeps its data in external storage (other files): maas reads no other file (refused)");
    Handle type = checked(H5Dget_type(d), ctx_, "cannot read the type of dataset " + path);
    Handle space = checked(H5Dget_space(d), ctx_, "cannot read the shape of dataset " + path);
    Node& n = tree_.nodes[node];
    n.shape = space_shape(static_cast<hid_t>(space.id()));
    for (int64_t dim : n.shape)
      if (dim < 0) fail_in(ctx_, "cannot read the shape of dataset " + path);
    spend(n.shape.size() * 8 + 64, "dataset " + path);
    const H5T_class_t cls = H5Tget_class(static_cast<hid_t>(type.id()));
    if (cls != H5T_FLOAT && cls != H5T_INTEGER) return;
    n.numeric = true;
    const hssize_t points = H5Sget_simple_extent_npoints(static_cast<hid_t>(space.id()));
    if (points < 0) fail_in(ctx_, "cannot read the shape of dataset " + path);
    const uint64_t count = static_cast<uint64_t>(points);
    const uint64_t width = std::max<uint64_t>(H5Tget_size(static_cast<hid_t>(type.id())), 1);
    const uint64_t stored = H5Dget_storage_size(d);
    const uint64_t stored_limit = stored > image_bytes_ ? image_bytes_ : stored;
    const bool too_big = count > UINT64_MAX / 16 ||
                         count * width > kSlackBytes + kMaxExpansion * stored_limit;
    if (too_big) {
      throw Error(ctx_.who + ": " + ctx_.path + ": dataset " + path + " declares " + shape_text(n.shape) + " numbers of " +
                  std::to_string(width) + " bytes but the file stores " + std::to_string(stored) +
                  " bytes of it: the file is damaged or was made to exhaust memory");
    }
    spend(count * sizeof(float), "dataset " + path);
    if (count == 0) return;
    n.values.resize(count);
    if (H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, n.values.data()) < 0) {
      try {
        fail_in(ctx_, "cannot read dataset " + path);
      } catch (const Error& e) {
        n.error = e.what();
      }
      n.values = {};
    }
  }

  hid_t file_;
  uint64_t image_bytes_;
  const Context& ctx_;
  uint64_t budget_;
  Tree tree_;
  std::map<haddr_t, size_t> seen_;
};

// The access properties to read an image held in memory (HDF5's core driver
// with no backing file).
Handle image_access(const std::string& image, const Context& ctx) {
  Handle fapl = checked(H5Pcreate(H5P_FILE_ACCESS), ctx, "cannot create a property list");
  if (H5Pset_fapl_core(static_cast<hid_t>(fapl.id()), 1 << 16, 0) < 0 ||
      H5Pset_file_image(static_cast<hid_t>(fapl.id()), const_cast<char*>(image.data()), image.size()) < 0)
    fail_in(ctx, "cannot set up reading the file in memory");
  H5Pset_fclose_degree(static_cast<hid_t>(fapl.id()), H5F_CLOSE_STRONG);
  return fapl;
}

// In the child: the tree of `image`, or the error, as the message to the parent.
std::string walk_image(const std::string& image, const Context& ctx) {
  std::string out;
  try {
    Quiet q;
    Handle fapl = image_access(image, ctx);
    Handle file = checked(H5Fopen("maas-image", H5F_ACC_RDONLY, static_cast<hid_t>(fapl.id())), ctx,
                          "cannot open the HDF5 file");
    const Tree t = Walker(static_cast<hid_t>(file.id()), image.size(), ctx).walk();
    size_t bytes = 64;
    for (const Node& n : t.nodes) {
      bytes += 64 + n.values.size() * sizeof(float) + n.shape.size() * 8 + n.error.size();
      for (const auto& link : n.links) bytes += 16 + link.first.size();
      for (const auto& [name, a] : n.attributes) {
        bytes += 64 + name.size() + a.error.size() + 8 * (a.numbers.size() + a.ints.size());
        for (const std::string& v : a.strings) bytes += 8 + v.size();
      }
    }
    out.reserve(bytes);
    out = "T";
    put_tree(out, t);
  } catch (const Error& e) {
    out = std::string("E") + e.what();
  } catch (const std::bad_alloc&) {
    out = "E" + ctx.who + ": " + ctx.path + ": reading it needs more memory than there is";
  }
  return out;
}

bool write_all(int fd, const char* p, size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

std::string signal_text(int sig) {
  const char* name = ::strsignal(sig);
  return "signal " + std::to_string(sig) + (name != nullptr ? std::string(", ") + name : std::string());
}

}  // namespace

Tree read_in_child(const std::string& image, const Context& ctx) {
  const std::string where = ctx.who + ": " + ctx.path + ": ";
  const double timeout = g_read_timeout > 0 ? g_read_timeout : 10.0 + static_cast<double>(image.size()) / 20e6;
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0)
    throw Error(where + "cannot create a pipe to read the file: " + std::strerror(errno));
  const uint64_t max_message = 64 + kTotalSlack + kTotalExpansion * image.size() + 64 * image.size();
  const pid_t pid = ::fork();
  if (pid < 0) {
    const int e = errno;
    ::close(fds[0]);
    ::close(fds[1]);
    throw Error(where + "cannot start the process that reads HDF5 files: " + std::strerror(e));
  }
  if (pid == 0) {
    // The child: silent, bounded in time even if the parent is gone, and
    // leaving by _exit (no atexit handlers, no libhdf5 shutdown).
    ::close(fds[0]);
    const int null = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (null >= 0) {
      ::dup2(null, 1);
      ::dup2(null, 2);
    }
    // Default actions: a crash or the alarm ends the child by its signal,
    // whatever handlers the program (or a sanitizer) installed.
    for (int sig : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGALRM, SIGPIPE, SIGTERM, SIGINT, SIGXFSZ})
      ::signal(sig, SIG_DFL);
    ::alarm(static_cast<unsigned>(timeout) + 5);
    int code = 0;
    try {
      const std::string msg = walk_image(image, ctx);
      std::string length;
      put_u64(length, msg.size());
      code = write_all(fds[1], length.data(), length.size()) && write_all(fds[1], msg.data(), msg.size()) ? 0 : 4;
    } catch (...) {
      code = 3;
    }
    ::_exit(code);
  }
  ::close(fds[1]);
  // The answer: its length (8 bytes), then the message ('T' and the tree,
  // or 'E' and an error), read straight into place.
  std::string msg;
  bool timed_out = false, too_long = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout);
  // Reads up to n bytes into dst; 0 at the end of the pipe or on timeout.
  auto read_some = [&](char* dst, size_t n) -> size_t {
    for (;;) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) {
        timed_out = true;
        return 0;
      }
      struct pollfd pfd = {fds[0], POLLIN, 0};
      const int r = ::poll(&pfd, 1, static_cast<int>(std::min<int64_t>(left.count(), 1000)));
      if (r <= 0) continue;
      const ssize_t got = ::read(fds[0], dst, n);
      if (got < 0 && errno == EINTR) continue;
      return got > 0 ? static_cast<size_t>(got) : 0;
    }
  };
  char length[8];
  size_t have = 0;
  while (have < 8) {
    const size_t got = read_some(length + have, 8 - have);
    if (got == 0) break;
    have += got;
  }
  if (have == 8) {
    const uint64_t want = get_u64(length);
    if (want > max_message) {
      too_long = true;
    } else {
      msg.resize(static_cast<size_t>(want));
      size_t done = 0;
      while (done < msg.size()) {
        const size_t got = read_some(&msg[done], msg.size() - done);
        if (got == 0) break;
        done += got;
      }
      if (done < msg.size()) msg.clear();  // incomplete: reported below
    }
  }
  ::close(fds[0]);
  if (timed_out || too_long) ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  const std::string damaged = ": the file is damaged or not a valid HDF5 file";
  if (timed_out)
    throw Error(where + "libhdf5 did not finish reading it in " + std::to_string(static_cast<int>(timeout)) +
                " s (stopped)" + damaged);
  if (too_long) throw Error(where + "reading it gave more data than the file can hold" + damaged);
  if (WIFSIGNALED(status))
    throw Error(where + "libhdf5 crashed (" + signal_text(WTERMSIG(status)) + ") while reading it" + damaged);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    throw Error(where + "libhdf5 failed while reading it (exit status " +
                std::to_string(WIFEXITED(status) ? WEXITSTATUS(status) : -1) + ")" + damaged);
  if (!msg.empty() && msg[0] == 'E') throw Error(msg.substr(1));
  Tree t;
  if (msg.empty() || msg[0] != 'T' || !get_tree(msg, 1, t))
    throw Error(where + "the process reading it sent back an incomplete answer" + damaged);
  return t;
}

void set_read_timeout(double seconds) { g_read_timeout = seconds > 0 ? seconds : 0; }

}  // namespace maas::detail::h5
