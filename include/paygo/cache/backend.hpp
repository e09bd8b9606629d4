// paygo/cache/backend.hpp — where the page cache gets its bytes.
//
// Contract: a Backend opens files read-only, reports their size and reads
// ranges with pread(2) semantics (a short count is not an error; 0 means end
// of file). It is called only on the miss and open paths, never on a hit, so
// a virtual interface costs nothing where it matters and lets tests inject
// errors and short reads (tests/unit/cache_test.cpp).
#pragma once

#include <compare>
#include <cstddef>
#include <cstdint>
#include <string>

#include "paygo/cache/result.hpp"

namespace paygo::cache {

/// What makes two opens the same file: (device, inode) for POSIX files.
struct FileIdentity {
  std::uint64_t device = 0, inode = 0;
  auto operator<=>(const FileIdentity&) const = default;
};

class Backend {
 public:
  virtual ~Backend() = default;
  /// Opens `path` for reading; rejects directories (EISDIR).
  virtual Result<int> open(const std::string& path) = 0;
  virtual Result<std::uint64_t> size(int handle) = 0;
  /// The file's identity, so that two opens of one file share its pages.
  /// Default: not supported (ENOTSUP); the cache then tells files apart by
  /// the path given to open().
  virtual Result<FileIdentity> identity(int handle) {
    (void)handle;
    return std::errc::not_supported;
  }
  /// Reads at most `len` bytes at `offset`; may return fewer.
  virtual Result<std::size_t> pread(int handle, void* buf, std::size_t len,
                                    std::uint64_t offset) = 0;
  virtual void close(int handle) noexcept = 0;
};

/// The real thing: open(2), fstat(2), pread(2), close(2).
class PosixBackend final : public Backend {
 public:
  Result<int> open(const std::string& path) override;
  Result<std::uint64_t> size(int handle) override;
  Result<FileIdentity> identity(int handle) override;
  Result<std::size_t> pread(int handle, void* buf, std::size_t len, std::uint64_t offset) override;
  void close(int handle) noexcept override;
};

}  // namespace paygo::cache
