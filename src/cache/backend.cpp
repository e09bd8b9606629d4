// PosixBackend: the page cache's default source of bytes.
#include "paygo/cache/backend.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

namespace paygo::cache {

namespace {
std::error_code last_error() {
  return {errno, std::generic_category()};
}
}  // namespace

Result<int> PosixBackend::open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return last_error();
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const auto e = last_error();
    ::close(fd);
    return e;
  }
  if (S_ISDIR(st.st_mode)) {
    ::close(fd);
    return std::errc::is_a_directory;
  }
  return fd;
}

Result<std::uint64_t> PosixBackend::size(int handle) {
  struct stat st {};
  if (::fstat(handle, &st) != 0) return last_error();
  return static_cast<std::uint64_t>(st.st_size);
}

Result<FileIdentity> PosixBackend::identity(int handle) {
  struct stat st {};
  if (::fstat(handle, &st) != 0) return last_error();
  return FileIdentity{static_cast<std::uint64_t>(st.st_dev), static_cast<std::uint64_t>(st.st_ino)};
}

Result<std::size_t> PosixBackend::pread(int handle, void* buf, std::size_t len,
                                        std::uint64_t offset) {
  for (;;) {
    const ssize_t n = ::pread(handle, buf, len, static_cast<off_t>(offset));
    if (n >= 0) return static_cast<std::size_t>(n);
    if (errno != EINTR) return last_error();
  }
}

void PosixBackend::close(int handle) noexcept {
  ::close(handle);
}

}  // namespace paygo::cache
