// Shared by the fuzz harnesses (docs/verification.md, "Fuzzing"): the input
// reader, FuzzedDataProvider (libFuzzer's header, found by tests/CMakeLists.txt
// also for the g++ builds), a trace switch and, with -DFUZZ_STANDALONE, a
// main() that replays files or directories of inputs once each (how ctest
// replays the corpus in the g++ presets; libFuzzer's own main is used in the
// clang fuzz build).
//
// The harnesses read every field with ConsumeIntegral<uint8_t/uint16_t>(),
// which takes bytes from the END of the input backwards (a 16-bit field: its
// high byte first), and 0 once the input is used up. So an input file is its
// fields in reverse order; tests/fuzz/make_corpus.py writes them that way.
#pragma once

#include <FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#ifdef FUZZ_STANDALONE
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>
#endif

namespace paygo::fuzz {

/// PAYGO_FUZZ_TRACE=1 in the environment: each harness prints what every
/// input did (the decoded operations and their outcomes) to stderr, also
/// when nothing fails. For checking what a seed exercises.
inline bool trace_enabled() {
  static const bool on = [] {
    const char* e = std::getenv("PAYGO_FUZZ_TRACE");
    return e != nullptr && *e != '\0' && *e != '0';
  }();
  return on;
}

/// Prints the reason and aborts: libFuzzer (and ctest) report it as a crash.
[[noreturn]] inline void fail(const char* what) {
  std::fprintf(stderr, "FUZZ CHECK FAILED: %s\n", what);
  std::fflush(stderr);
  std::abort();
}

}  // namespace paygo::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

#ifdef FUZZ_STANDALONE
int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  std::vector<fs::path> files;
  for (int i = 1; i < argc; ++i) {
    const fs::path p = argv[i];
    if (fs::is_directory(p)) {
      for (const auto& e : fs::directory_iterator(p)) {
        if (e.is_regular_file()) files.push_back(e.path());
      }
    } else {
      files.push_back(p);
    }
  }
  std::sort(files.begin(), files.end());
  if (files.empty()) {
    std::fprintf(stderr, "usage: %s FILE-or-DIR...  (no inputs found)\n", argv[0]);
    return 2;
  }
  for (const auto& f : files) {
    if (paygo::fuzz::trace_enabled()) std::fprintf(stderr, "== %s\n", f.filename().c_str());
    std::ifstream in(f, std::ios::binary);
    const std::vector<char> buf((std::istreambuf_iterator<char>(in)),
                                std::istreambuf_iterator<char>());
    LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t*>(buf.data()), buf.size());
  }
  std::printf("%s: %zu inputs replayed, no failure\n", argv[0], files.size());
  return 0;
}
#endif
