// libFuzzer harness for paygo::cache::PageCache (docs/verification.md,
// "Fuzzing"), single-threaded, over three small temp files whose bytes are
// pattern(file, offset), through a backend that injects I/O errors and short
// reads. Every result is compared with what pread(2) on the file would give
// and with a model of the pins:
//   * read: the bytes and the count (short at the end of the file); an
//     injected error gives EIO (or a short count if a page before the
//     failing one was read), nothing is cached, and the next read succeeds;
//   * pin: the page's bytes and length; pinned bytes never change, whatever
//     is dropped, advised, refreshed or evicted meanwhile;
//   * ENOBUFS exactly when every frame is pinned and the page is not one of
//     them (and never otherwise);
//   * drop(): every pinned page is busy, nothing else is, and afterwards
//     stats().cached_pages is the number of distinct pinned, still-linked
//     frames; a page known not to be cached (dropped, DontNeed, failed,
//     refreshed away) is a miss, a pinned one a hit;
//   * refresh() after the file was truncated or grown;
//   * open() of an open file gives its FileId; the last close() makes reads
//     EBADF, leaves pins valid, uncaches the file; reopening gives the same id.
//
// Input layout, in the order the fields are consumed (FuzzedDataProvider's
// ConsumeIntegral: from the end of the input backwards, fuzz_common.hpp):
// 4 header bytes (capacity 1..6 pages, counter Paygo or Atomic, evict/drop
// batch, three file sizes 0..~5 pages), then 4 bytes per op: kind,
// file/argument, a 16-bit argument. PAYGO_FUZZ_TRACE=1 prints each op, what
// it did and the cache's statistics after it.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <iterator>
#include <memory>
#include <set>
#include <string>
#include <system_error>
#include <vector>

#include "../common/page_pattern.hpp"
#include "fuzz_common.hpp"
#include "paygo/baselines/atomic.hpp"
#include "paygo/cache/page_cache.hpp"
#include "paygo/paygo_counter.hpp"

namespace {

namespace fs = std::filesystem;
using paygo::cache::Advice;
using paygo::cache::FileId;
using paygo::cache::kPageSize;
using paygo::fuzz::fail;

constexpr std::uint32_t kFiles = 3;
constexpr std::size_t kMaxPins = 8;
constexpr int kMaxOps = 300;

using paygo::test_support::pattern;  // tests/common/page_pattern.hpp

std::uint64_t pages_for(std::uint64_t bytes) {
  return (bytes + kPageSize - 1) / kPageSize;
}

const fs::path& temp_dir() {
  static const fs::path dir = [] {
    std::string tmpl = (fs::temp_directory_path() / "paygo-cache-fuzz-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) fail("mkdtemp");
    return fs::path(tmpl);
  }();
  return dir;
}

struct DirCleanup {
  ~DirCleanup() {
    std::error_code ec;
    fs::remove_all(temp_dir(), ec);
  }
};

// Sets the file to `size` bytes of pattern(file, ·) (only the new tail is
// written: the bytes that stay are already right).
void resize_file(const std::string& path, std::uint32_t file, std::uint64_t old_size,
                 std::uint64_t size) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT, 0600);
  if (fd < 0) fail("open for writing");
  if (::ftruncate(fd, static_cast<off_t>(size)) != 0) fail("ftruncate");
  if (size > old_size) {
    std::vector<std::uint8_t> buf(size - old_size);
    for (std::uint64_t i = 0; i < buf.size(); ++i) buf[i] = pattern(file, old_size + i);
    if (::pwrite(fd, buf.data(), buf.size(), static_cast<off_t>(old_size)) !=
        static_cast<ssize_t>(buf.size())) {
      fail("pwrite");
    }
  }
  ::close(fd);
}

// The real backend, plus injected errors and short reads.
class FaultyBackend final : public paygo::cache::Backend {
 public:
  int fail_next = 0;          // the next N preads fail with EIO
  std::size_t max_chunk = 0;  // >0: preads return at most this many bytes
  long failed = 0;            // injected errors so far
  long preads = 0;

  paygo::cache::Result<int> open(const std::string& path) override { return real_.open(path); }
  paygo::cache::Result<std::uint64_t> size(int h) override { return real_.size(h); }
  paygo::cache::Result<std::size_t> pread(int h, void* buf, std::size_t len,
                                          std::uint64_t off) override {
    ++preads;
    if (fail_next > 0) {
      --fail_next;
      ++failed;
      return std::errc::io_error;
    }
    if (max_chunk != 0) len = std::min(len, max_chunk);
    return real_.pread(h, buf, len, off);
  }
  void close(int h) noexcept override { real_.close(h); }

 private:
  paygo::cache::PosixBackend real_;
};

template <class C>
class Harness {
  using Cache = paygo::cache::PageCache<C>;

 public:
  template <class... A>
  Harness(const paygo::cache::CacheOptions& opt, const std::uint64_t (&sizes)[kFiles], A&&... a)
      : cache_(with_backend(opt, &backend_), std::forward<A>(a)...) {
    for (std::uint32_t f = 0; f < kFiles; ++f) {
      path_[f] = (temp_dir() / ("f" + std::to_string(f))).string();
      ::unlink(path_[f].c_str());
      resize_file(path_[f], f, 0, sizes[f]);
      size_[f] = sizes[f];
      auto id = cache_.open(path_[f]);
      if (!id) fail("open of a fresh file failed");
      id_[f] = *id;
      for (std::uint64_t p = 0; p < pages_for(size_[f]); ++p) uncached_[f].insert(p);
    }
  }

  void run(FuzzedDataProvider& in) {
    for (int n = 0; n < kMaxOps && in.remaining_bytes() != 0; ++n) {
      const auto kind = in.ConsumeIntegral<std::uint8_t>();
      const auto a = in.ConsumeIntegral<std::uint8_t>();
      const auto b = in.ConsumeIntegral<std::uint16_t>();
      step(kind, a, b);
      check_pins();
      if (paygo::fuzz::trace_enabled()) trace_step(kind, a, b);
    }
    pins_.clear();
    const auto rep = cache_.drop();
    if (rep.busy != 0) fail("final drop: frames busy with nothing pinned");
    if (cache_.stats().cached_pages != 0) fail("final drop: pages still cached");
  }

 private:
  static paygo::cache::CacheOptions with_backend(paygo::cache::CacheOptions o,
                                                 paygo::cache::Backend* b) {
    o.backend = b;
    return o;
  }

  // With PAYGO_FUZZ_TRACE: one line per op, what it did (note_) and the
  // cache's state after it.
  static const char* kind_name(std::uint8_t kind) {
    static const char* const names[13] = {"read",   "read",  "pin",     "pin",   "unpin",
                                          "advise", "drop",  "refresh", "fault", "chunk",
                                          "errors", "close", "stats"};
    return names[kind % 13];
  }
  void trace_step(std::uint8_t kind, std::uint8_t a, std::uint16_t b) {
    const auto st = cache_.stats();
    std::fprintf(stderr,
                 "  op %u (%s) a %u b %u: %s\n    -> pins %zu, cached %zu, free %zu, hits %llu, "
                 "misses %llu, evictions %llu, preads %ld, injected errors %ld\n",
                 kind, kind_name(kind), a, b, note_.c_str(), pins_.size(), st.cached_pages,
                 st.free_frames, static_cast<unsigned long long>(st.hits),
                 static_cast<unsigned long long>(st.misses),
                 static_cast<unsigned long long>(st.evictions), backend_.preads, backend_.failed);
    note_.clear();
  }
  void note(std::string s) {
    if (paygo::fuzz::trace_enabled()) note_ = std::move(s);
  }
  static std::string where(std::uint32_t f, std::uint64_t x) {
    return "f" + std::to_string(f) + " " + std::to_string(x);
  }

  struct Pin {
    typename Cache::PinnedPage page;
    std::uint32_t f;
    std::uint64_t pg;
    bool stale;  // unlinked by refresh(): still valid for us, never found again
  };

  void check_bytes(std::uint32_t f, std::uint64_t off, const std::uint8_t* p, std::size_t n,
                   const char* what) const {
    for (std::size_t i = 0; i < n; ++i) {
      if (p[i] != pattern(f, off + i)) {
        std::fprintf(stderr, "%s: file %u offset %llu\n", what, f,
                     static_cast<unsigned long long>(off + i));
        fail("wrong byte");
      }
    }
  }
  void check_pins() const {
    for (const Pin& p : pins_) {
      check_bytes(p.f, p.pg * kPageSize,
                  reinterpret_cast<const std::uint8_t*>(p.page.bytes().data()), p.page.size(),
                  "pinned page");
    }
  }
  std::set<const void*> pinned_frames(bool include_stale) const {
    std::set<const void*> s;
    for (const Pin& p : pins_) {
      if (include_stale || !p.stale) s.insert(p.page.bytes().data());
    }
    return s;
  }
  bool full() const { return pinned_frames(true).size() == cache_.frame_count(); }
  bool pinned_live(std::uint32_t f, std::uint64_t pg) const {
    return std::any_of(pins_.begin(), pins_.end(),
                       [&](const Pin& p) { return p.f == f && p.pg == pg && !p.stale; });
  }
  // A page the cache can serve now: always, unless every frame is pinned.
  bool servable(std::uint32_t f, std::uint64_t pg) const { return !full() || pinned_live(f, pg); }

  void step(std::uint8_t kind, std::uint8_t a, std::uint16_t b) {
    const std::uint32_t f = a % kFiles;
    const std::uint64_t size = size_[f];
    const long failed0 = backend_.failed;
    const auto st0 = cache_.stats();
    switch (kind % 13) {
      case 0:
      case 1: {  // read
        const std::uint64_t off = b % (size + 2 * kPageSize);
        const std::size_t len = static_cast<std::size_t>((b * 7u + a) % (3 * kPageSize + 10));
        std::size_t expect =
            off >= size ? 0 : static_cast<std::size_t>(std::min<std::uint64_t>(len, size - off));
        // One page touched (an access cut short by ENOBUFS counts a miss
        // for the page it could not load, too).
        const bool one_page = expect != 0 && off / kPageSize == (off + expect - 1) / kPageSize;
        // Pages the cache can serve: up to the first one it cannot.
        if (expect != 0) {
          for (std::uint64_t pg = off / kPageSize; pg * kPageSize < off + expect; ++pg) {
            if (!servable(f, pg)) {
              expect = static_cast<std::size_t>(std::max<std::uint64_t>(pg * kPageSize, off) - off);
              break;
            }
          }
        }
        const bool enobufs = expect == 0 && off < size && len != 0;
        std::vector<std::uint8_t> buf(len + 1);
        auto r = cache_.read(id_[f], buf.data(), len, off);
        const bool faulted = backend_.failed != failed0;
        if (!r) {
          note("read " + where(f, off) + " len " + std::to_string(len) + ": " +
               r.error().message());
          if (faulted && r.error() == std::errc::io_error) break;
          if (enobufs && !faulted && r.error() == std::errc::no_buffer_space) break;
          std::fprintf(stderr, "read(f%u, off %llu, len %zu): %s\n", f,
                       static_cast<unsigned long long>(off), len, r.error().message().c_str());
          fail("read: unexpected error");
        }
        if (enobufs) fail("read: expected ENOBUFS (every frame pinned)");
        if (faulted ? *r > expect || (*r != expect && (off + *r) % kPageSize != 0) : *r != expect) {
          std::fprintf(stderr, "read(f%u, off %llu, len %zu) = %zu, expected %zu (faulted %d)\n", f,
                       static_cast<unsigned long long>(off), len, *r, expect, faulted);
          fail("read: wrong count");
        }
        check_bytes(f, off, buf.data(), *r, "read");
        note("read " + where(f, off) + " len " + std::to_string(len) + ": " + std::to_string(*r) +
             " bytes" + (faulted ? " (injected error: short)" : ""));
        // What was read is cached now; a page whose read failed is not.
        for (std::uint64_t pg = off / kPageSize; pg * kPageSize < off + *r; ++pg) {
          uncached_[f].erase(pg);
        }
        if (!faulted && one_page) {
          check_hit(st0, f, off / kPageSize);
        }
        break;
      }
      case 2:
      case 3: {  // pin
        const std::uint64_t pg = b % (pages_for(size) + 1);
        if (pins_.size() >= kMaxPins) pins_.erase(pins_.begin());
        const bool can = servable(f, pg);
        auto r = cache_.pin(id_[f], pg);
        const bool faulted = backend_.failed != failed0;
        if (pg >= pages_for(size)) {
          if (r || r.error() != std::errc::invalid_argument) fail("pin past the end: not EINVAL");
          note("pin page " + where(f, pg) + ": past the end, EINVAL");
          break;
        }
        if (!r) {
          note("pin page " + where(f, pg) + ": " + r.error().message());
          if (faulted && r.error() == std::errc::io_error) break;
          if (!can && !faulted && r.error() == std::errc::no_buffer_space) break;
          std::fprintf(stderr, "pin(f%u, page %llu): %s\n", f, static_cast<unsigned long long>(pg),
                       r.error().message().c_str());
          fail("pin: unexpected error");
        }
        if (!can) fail("pin: expected ENOBUFS (every frame pinned)");
        const std::uint64_t want = std::min<std::uint64_t>(kPageSize, size - pg * kPageSize);
        if (r->size() != want) fail("pin: wrong page length");
        check_bytes(f, pg * kPageSize, reinterpret_cast<const std::uint8_t*>(r->bytes().data()),
                    r->size(), "pin");
        if (!faulted) check_hit(st0, f, pg);
        note("pin page " + where(f, pg) + ": pinned, " + std::to_string(r->size()) + " bytes");
        uncached_[f].erase(pg);
        pins_.push_back(Pin{std::move(*r), f, pg, false});
        break;
      }
      case 4:  // unpin
        if (!pins_.empty()) {
          const std::size_t i = b % pins_.size();
          note("unpin page " + where(pins_[i].f, pins_[i].pg) + (pins_[i].stale ? " (stale)" : ""));
          pins_.erase(pins_.begin() + static_cast<std::ptrdiff_t>(i));
        }
        break;
      case 5: {  // advise
        const std::uint64_t off = b % (size + kPageSize);
        const std::uint64_t len = (a >> 2) % 4 == 0 ? 0 : (b >> 3) % (3 * kPageSize);
        const Advice adv = static_cast<Advice>((a >> 4) % 4);
        // The cache's own range rule (fadvise: len 0 = to the end).
        const std::uint64_t first = off / kPageSize;
        const std::uint64_t end_byte = len == 0 ? size : off + len;
        const std::uint64_t last = std::max(pages_for(std::min(end_byte, size)), first);
        bool can = true;
        for (std::uint64_t pg = first; pg < last; ++pg) can = can && servable(f, pg);
        auto r = cache_.advise(id_[f], off, len, adv);
        const bool faulted = backend_.failed != failed0;
        static const char* const adv_names[4] = {"Normal", "Hot", "WillNeed", "DontNeed"};
        note("advise " + std::string(adv_names[static_cast<int>(adv) % 4]) + " " + where(f, off) +
             " len " + std::to_string(len) + ": " + (r ? "ok" : r.error().message()));
        if (!r) {
          if (adv == Advice::WillNeed && faulted && r.error() == std::errc::io_error) break;
          if (adv == Advice::WillNeed && !can && r.error() == std::errc::no_buffer_space) break;
          fail("advise: unexpected error");
        }
        if (adv == Advice::WillNeed && !can) fail("advise(WillNeed): expected ENOBUFS");
        if (adv == Advice::WillNeed) {
          for (std::uint64_t pg = first; pg < last; ++pg) uncached_[f].erase(pg);
        }
        if (adv == Advice::DontNeed) {
          for (std::uint64_t pg = first; pg < last; ++pg) {
            if (!pinned_live(f, pg)) uncached_[f].insert(pg);
          }
        }
        break;
      }
      case 6: {  // drop
        // busy counts cached pages (Ready frames) only: a pinned frame that
        // refresh() unlinked is held, but no longer a page of the cache.
        const auto all = pinned_frames(true).size();
        const auto linked = pinned_frames(false).size();
        const auto rep = cache_.drop(b % 3 == 0 ? 1 : 0);
        note(std::string(b % 3 == 0 ? "drop (page by page)" : "drop") + ": busy " +
             std::to_string(rep.busy));
        if (rep.busy != linked) {
          std::fprintf(stderr, "drop: busy %zu, pinned linked frames %zu\n", rep.busy, linked);
          fail("drop: busy != pinned pages");
        }
        const auto st = cache_.stats();
        if (st.cached_pages != pinned_frames(false).size()) {
          std::fprintf(stderr, "drop: cached_pages %zu, pinned linked frames %zu\n",
                       st.cached_pages, pinned_frames(false).size());
          fail("drop: cached_pages != pinned pages");
        }
        if (st.free_frames != st.frames - all) fail("drop: free frames != frames - pinned");
        for (std::uint32_t g = 0; g < kFiles; ++g) {
          for (std::uint64_t pg = 0; pg < pages_for(size_[g]); ++pg) {
            if (!pinned_live(g, pg)) uncached_[g].insert(pg);
          }
        }
        break;
      }
      case 7: {  // the file changes on disk, then refresh()
        const std::uint64_t next = b % (5 * kPageSize + 3);
        resize_file(path_[f], f, size, next);
        auto r = cache_.refresh(id_[f]);
        if (!r || *r != next) fail("refresh: wrong size");
        note("refresh f" + std::to_string(f) + ": " + std::to_string(size) + " -> " +
             std::to_string(next) + " bytes");
        if (next != size) {
          const std::uint64_t keep = std::min(size, next) / kPageSize;
          for (Pin& p : pins_) {
            if (p.f == f && p.pg >= keep) p.stale = true;
          }
          for (std::uint64_t pg = keep; pg < pages_for(next); ++pg) uncached_[f].insert(pg);
          for (auto it = uncached_[f].begin(); it != uncached_[f].end();) {
            it = *it >= pages_for(next) ? uncached_[f].erase(it) : std::next(it);
          }
        }
        size_[f] = next;
        auto s = cache_.size(id_[f]);
        if (!s || *s != next) fail("size() after refresh");
        break;
      }
      case 8:
        backend_.fail_next = 1 + (b % 2);
        note("the next " + std::to_string(backend_.fail_next) + " preads fail");
        break;
      case 9:
        backend_.max_chunk = b % 3 == 0 ? 0 : 1 + b % 5000;
        note("preads return at most " + std::to_string(backend_.max_chunk) + " bytes (0: any)");
        break;
      case 10: {  // errors as values
        auto bad = cache_.read(static_cast<FileId>(kFiles + a), &b, 1, 0);
        if (bad || bad.error() != std::errc::bad_file_descriptor) fail("read of a bad FileId");
        auto nul = cache_.read(id_[f], nullptr, 1, 0);
        if (nul || nul.error() != std::errc::invalid_argument) fail("read into nullptr");
        auto missing = cache_.open((temp_dir() / "no-such-file").string());
        if (missing || missing.error() != std::errc::no_such_file_or_directory) fail("ENOENT");
        auto dir = cache_.open(temp_dir().string());
        if (dir || dir.error() != std::errc::is_a_directory) fail("EISDIR");
        note("EBADF, EINVAL, ENOENT, EISDIR as values");
        break;
      }
      case 11: {  // a second open shares the file; the last close drops it; reopen
        auto again = cache_.open(path_[f]);
        if (!again || *again != id_[f]) fail("open of an open file: not the same FileId");
        if (!cache_.close(id_[f])) fail("close of the second open");
        if (b % 2 == 0) {  // still open: nothing changed
          check_pins();
          note("open f" + std::to_string(f) + " again, close once: still open");
          break;
        }
        if (!cache_.close(id_[f])) fail("last close");
        char c = 0;
        auto closed = cache_.read(id_[f], &c, 1, 0);
        if (closed || closed.error() != std::errc::bad_file_descriptor) fail("read after close");
        if (cache_.close(id_[f]).error() != std::errc::bad_file_descriptor) fail("close twice");
        // Pins of the file stay valid, unlinked (as after refresh); no page
        // of it is cached any more.
        for (Pin& p : pins_) {
          if (p.f == f) p.stale = true;
        }
        for (std::uint64_t pg = 0; pg < pages_for(size); ++pg) uncached_[f].insert(pg);
        check_pins();
        auto reopened = cache_.open(path_[f]);
        if (!reopened || *reopened != id_[f]) fail("reopen: not the same FileId");
        auto sz = cache_.size(id_[f]);
        if (!sz || *sz != size) fail("size() after reopen");
        note("open f" + std::to_string(f) + " again, last close (EBADF after), reopen");
        break;
      }
      default: {  // statistics are consistent
        const auto st = cache_.stats();
        if (st.cached_pages > st.frames || st.free_frames > st.frames ||
            st.distributed_pages > st.cached_pages ||
            st.cached_pages + st.free_frames > st.frames) {
          fail("stats inconsistent");
        }
        note("stats consistent");
        break;
      }
    }
  }

  // A one-page access: a hit iff the page is pinned (and linked), a miss if
  // it is known not to be cached.
  void check_hit(const paygo::cache::CacheStats& st0, std::uint32_t f, std::uint64_t pg) {
    const auto st = cache_.stats();
    const auto hits = st.hits - st0.hits, misses = st.misses - st0.misses;
    if (hits + misses != 1) fail("one page access: not one hit or miss");
    if (pinned_live(f, pg) && hits != 1) fail("pinned page missed");
    if (uncached_[f].count(pg) != 0 && misses != 1) {
      std::fprintf(stderr, "file %u page %llu\n", f, static_cast<unsigned long long>(pg));
      fail("page known not to be cached was a hit");
    }
  }

  FaultyBackend backend_;  // before cache_: the cache calls it until it dies
  Cache cache_;
  std::string path_[kFiles];
  FileId id_[kFiles] = {};
  std::uint64_t size_[kFiles] = {};
  std::set<std::uint64_t> uncached_[kFiles];  // pages known not to be cached
  std::vector<Pin> pins_;                     // destroyed before cache_
  std::string note_;                          // PAYGO_FUZZ_TRACE: what the op did
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static DirCleanup cleanup;
  FuzzedDataProvider in(data, size);
  const auto h0 = in.ConsumeIntegral<std::uint8_t>();
  std::uint64_t sizes[kFiles];
  for (auto& s : sizes)
    s = std::uint64_t{in.ConsumeIntegral<std::uint8_t>()} * 83;  // 0 .. 21165 bytes (~5 pages)
  paygo::cache::CacheOptions opt;
  opt.capacity_bytes = (1 + h0 % 6) * kPageSize;
  opt.evict_batch = 1 + (h0 >> 4) % 4;
  opt.drop_batch = 1 + (h0 >> 6);
  if (paygo::fuzz::trace_enabled()) {
    std::fprintf(
        stderr,
        "cache_fuzz: %zu pages, %s, evict_batch %zu, drop_batch %zu, files %llu %llu %llu bytes\n",
        opt.capacity_bytes / kPageSize, ((h0 >> 3) & 1) ? "Atomic" : "Paygo", opt.evict_batch,
        opt.drop_batch, static_cast<unsigned long long>(sizes[0]),
        static_cast<unsigned long long>(sizes[1]), static_cast<unsigned long long>(sizes[2]));
  }
  if ((h0 >> 3) & 1) {
    Harness<paygo::baselines::Atomic> h(opt, sizes);
    h.run(in);
  } else {
    paygo::Paygo::Options po;
    po.max_slots = 2;
    po.table_entries = 4;
    po.probe = 2;
    po.local_limit = 2;
    po.group_size = 1;
    Harness<paygo::Paygo> h(opt, sizes, po);
    h.run(in);
  }
  return 0;
}
