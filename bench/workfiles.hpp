// bench/workfiles.hpp — the files the cache experiments read: a scratch
// directory that removes itself, and files of a given size.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

namespace paygo::bench {

/// A fresh directory under `parent` (or $TMPDIR, or /tmp), removed with its
/// contents on destruction unless keep() was called. Throws UsageError if it
/// cannot be made.
class ScratchDir {
 public:
  explicit ScratchDir(const std::string& parent);
  ~ScratchDir();
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  /// Writes `size` bytes (a pattern, not zeros, so no filesystem elides them)
  /// to `name` and returns its path. Throws std::runtime_error on I/O errors.
  std::string make_file(const std::string& name, std::uint64_t size) const;
  const std::filesystem::path& path() const { return path_; }
  /// Leaves the directory and its contents in place on destruction.
  void keep() { keep_ = true; }

 private:
  std::filesystem::path path_;
  bool keep_ = false;
};

}  // namespace paygo::bench
