// Internal: the one way maas replaces a file on disk (checkpoints, the
// training report), so that a crash, a full disk or a kill mid-write never
// leaves a half-written file where a good one was.
//
// write_file_atomically(path, bytes, who):
//   1. resolves `path` through symbolic links (the link itself stays, as
//      editors do) to the target file;
//   2. removes "<stem>.tmp.<pid>" files in the target's folder left by
//      writers whose process no longer exists (killed mid-write);
//   3. writes `bytes` to "<stem>.tmp.<pid>" beside the target, keeps the
//      target's permission bits, fsyncs it, and renames it over the target;
//   4. fsyncs the folder, so the rename is durable (best effort: some file
//      systems refuse).
// On any failure the temporary file is removed, the target is left as it
// was, and maas::Error says "<who>: <path>: <what failed>".
//
// The stem is the target's name, or, when that would make a name longer
// than NAME_MAX, its first 200 bytes and a hash of the rest.
#pragma once

#include <functional>
#include <string>

namespace maas::detail {

void write_file_atomically(const std::string& path, const std::string& bytes, const std::string& who);

// Called with "created" once the temporary file exists and "written" once
// the bytes are in it (before the rename): tests fail a write at each stage.
void set_atomic_write_hook(std::function<void(const std::string& stage)> hook);

}  // namespace maas::detail
