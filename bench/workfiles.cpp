// bench/workfiles.cpp — scratch files for the cache experiments.
#include "workfiles.hpp"

#include <fmt/core.h>
#include <stdlib.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <stdexcept>
#include <vector>

#include "common.hpp"

namespace paygo::bench {

namespace fs = std::filesystem;

ScratchDir::ScratchDir(const std::string& parent) {
  fs::path base = parent;
  if (base.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    base = tmp != nullptr && *tmp != '\0' ? tmp : "/tmp";
  }
  std::string tmpl = (base / "paygo-bench-XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) {
    throw UsageError(fmt::format("--dir: cannot create a directory in {}", base.string()));
  }
  path_ = tmpl;
}

ScratchDir::~ScratchDir() {
  if (keep_) return;
  std::error_code ec;
  fs::remove_all(path_, ec);
}

std::string ScratchDir::make_file(const std::string& name, std::uint64_t size) const {
  const fs::path p = path_ / name;
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  // A 1 MiB pattern, or the file's size if smaller (the same bytes: a
  // thousand 4 KiB files, e.g. DRBL at --threads 1000, then cost 4 MiB of
  // pattern, not 1 GiB).
  std::vector<char> block(static_cast<std::size_t>(std::min<std::uint64_t>(size, 1 << 20)));
  for (std::size_t i = 0; i < block.size(); ++i) block[i] = static_cast<char>(i * 131 + 7);
  for (std::uint64_t done = 0; done < size && out;) {
    const auto n = static_cast<std::streamsize>(std::min<std::uint64_t>(block.size(), size - done));
    out.write(block.data(), n);
    done += static_cast<std::uint64_t>(n);
  }
  out.flush();
  if (!out) throw std::runtime_error(fmt::format("cannot write {}", p.string()));
  return p.string();
}

}  // namespace paygo::bench
