// bench/workfiles.cpp — scratch files for the cache experiments.
#include "workfiles.hpp"

#include <fmt/core.h>
#include <stdlib.h>

#include <cctype>
#include <cstdlib>
#include <fstream>
#include <limits>
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
  std::error_code ec;
  fs::remove_all(path_, ec);
}

std::string ScratchDir::make_file(const std::string& name, std::uint64_t size) const {
  const fs::path p = path_ / name;
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  std::vector<char> block(1 << 20);
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

std::uint64_t parse_size(const std::string& text, const std::string& flag) {
  std::size_t pos = 0;
  unsigned long long v = 0;
  try {
    // stoull would take "-1" (as 2^64 - 1) and " 1": only digits may lead.
    if (text.empty() || std::isdigit(static_cast<unsigned char>(text[0])) == 0) {
      throw std::invalid_argument("not a number");
    }
    v = std::stoull(text, &pos);
  } catch (const std::exception&) {
    throw UsageError(fmt::format("{}: '{}' is not a size (e.g. 4096, 512K, 64M, 1G)", flag, text));
  }
  std::uint64_t mult = 1;
  if (pos < text.size()) {
    switch (std::toupper(static_cast<unsigned char>(text[pos]))) {
      case 'K':
        mult = 1ULL << 10;
        break;
      case 'M':
        mult = 1ULL << 20;
        break;
      case 'G':
        mult = 1ULL << 30;
        break;
      default:
        throw UsageError(fmt::format("{}: '{}' has an unknown unit (K, M or G)", flag, text));
    }
    ++pos;
    if (pos < text.size() && (text[pos] == 'i' || text[pos] == 'B')) ++pos;
    if (pos < text.size() && text[pos] == 'B') ++pos;
    if (pos != text.size()) throw UsageError(fmt::format("{}: '{}' is not a size", flag, text));
  }
  if (v == 0) throw UsageError(fmt::format("{}: must be greater than 0", flag));
  if (v > std::numeric_limits<std::uint64_t>::max() / mult)
    throw UsageError(fmt::format("{}: '{}' is too large", flag, text));
  return v * mult;
}

}  // namespace paygo::bench
