// The page cache over every counter: bytes equal pread, recycled frames are
// never observed, errors are values, drop() and advise() do what they say.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <latch>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "../common/page_pattern.hpp"
#include "all_counters.hpp"
#include "paygo/cache/page_cache.hpp"

namespace paygo::test {
namespace {

namespace fs = std::filesystem;
using cache::Advice;
using cache::CacheOptions;
using cache::kPageSize;
using cache::PageCache;

using test_support::pattern;  // tests/common/page_pattern.hpp

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "paygo-cache-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) std::abort();
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  // Writes a file of `size` bytes whose content is pattern(tag, offset).
  std::string make(const std::string& name, std::uint32_t tag, std::uint64_t size) const {
    const std::string p = (path_ / name).string();
    std::vector<std::uint8_t> buf(size);
    for (std::uint64_t i = 0; i < size; ++i) buf[i] = pattern(tag, i);
    FILE* f = std::fopen(p.c_str(), "wb");
    if (f == nullptr) std::abort();
    if (size != 0 && std::fwrite(buf.data(), 1, size, f) != size) std::abort();
    std::fclose(f);
    return p;
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// Wraps the real backend to inject errors and short reads.
class FaultyBackend final : public cache::Backend {
 public:
  std::atomic<int> fail_preads{0};        // the next N preads fail with EIO
  std::atomic<std::size_t> max_chunk{0};  // >0: preads return at most this many bytes
  std::atomic<int> open_errno{0};         // !=0: open fails with this errno
  std::atomic<long> preads{0};

  cache::Result<int> open(const std::string& path) override {
    if (const int e = open_errno.load(); e != 0) return std::error_code(e, std::generic_category());
    return real_.open(path);
  }
  cache::Result<std::uint64_t> size(int h) override { return real_.size(h); }
  cache::Result<std::size_t> pread(int h, void* buf, std::size_t len, std::uint64_t off) override {
    preads.fetch_add(1);
    int n = fail_preads.load();
    while (n > 0 && !fail_preads.compare_exchange_weak(n, n - 1)) {
    }
    if (n > 0) return std::errc::io_error;
    if (const std::size_t c = max_chunk.load(); c != 0) len = std::min(len, c);
    return real_.pread(h, buf, len, off);
  }
  void close(int h) noexcept override { real_.close(h); }

 private:
  cache::PosixBackend real_;
};

CacheOptions small(std::size_t pages, cache::Backend* backend = nullptr) {
  CacheOptions o;
  o.capacity_bytes = pages * kPageSize;
  o.evict_batch = 4;
  o.drop_batch = 8;
  o.backend = backend;
  return o;
}

template <class C>
class CacheTest : public ::testing::Test {
 protected:
  TempDir dir;
};
TYPED_TEST_SUITE(CacheTest, AllCounters);

// Threads that read while pages are evicted: every counter but noop, which
// counts nothing and so cannot keep a page from being recycled under a reader.
template <class C>
class ConcurrentCacheTest : public CacheTest<C> {
 protected:
  void SetUp() override {
    if (!C::kCounts)
      GTEST_SKIP() << "noop does not count: eviction may recycle a page under a reader";
  }
};
TYPED_TEST_SUITE(ConcurrentCacheTest, AllCounters);

TYPED_TEST(CacheTest, BytesEqualPreadAtRandomOffsets) {
  PageCache<TypeParam> cache(small(8));  // far smaller than the files: constant eviction
  const std::vector<std::uint64_t> sizes = {0, 1, 4095, 4096, 4097, 10 * kPageSize + 123};
  std::vector<cache::FileId> ids;
  std::vector<int> fds;
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    const auto p = this->dir.make("f" + std::to_string(i), static_cast<std::uint32_t>(i), sizes[i]);
    auto id = cache.open(p);
    ASSERT_TRUE(id) << id.error().message();
    ids.push_back(*id);
    fds.push_back(::open(p.c_str(), O_RDONLY));
  }
  std::mt19937_64 rng(7);
  std::vector<char> a(3 * kPageSize), b(3 * kPageSize);
  for (int iter = 0; iter < 3000; ++iter) {
    const std::size_t f = rng() % sizes.size();
    const std::uint64_t off = rng() % (sizes[f] + 2 * kPageSize + 1);
    const std::size_t len = rng() % a.size();
    const ssize_t want = ::pread(fds[f], b.data(), len, static_cast<off_t>(off));
    auto got = cache.read(ids[f], a.data(), len, off);
    ASSERT_TRUE(got) << got.error().message();
    ASSERT_EQ(static_cast<ssize_t>(*got), want) << "file " << f << " off " << off << " len " << len;
    ASSERT_EQ(0, std::memcmp(a.data(), b.data(), *got)) << "file " << f << " off " << off;
  }
  for (int fd : fds) ::close(fd);
  const auto s = cache.stats();
  EXPECT_GT(s.hits, 0u);
  EXPECT_GT(s.misses, 0u);
  EXPECT_GT(s.evictions, 0u);
}

// Readers on hot and cold pages while another thread drops and advises in a
// loop, with a capacity that forces constant eviction. Every byte is checked.
TYPED_TEST(ConcurrentCacheTest, ConcurrentReadersNeverSeeWrongBytes) {
  using C = TypeParam;
  constexpr std::uint64_t kPages = 24;
  const auto p0 = this->dir.make("a", 1, kPages * kPageSize);
  const auto p1 = this->dir.make("b", 2, kPages * kPageSize - 100);
  PageCache<C> cache(small(8));
  auto f0 = cache.open(p0), f1 = cache.open(p1);
  ASSERT_TRUE(f0 && f1);
  ASSERT_TRUE(cache.advise(*f0, 0, 4 * kPageSize, Advice::Hot));  // pages 0-3 hot
  std::atomic<bool> stop{false};
  std::atomic<long> bad{0}, reads{0}, errors{0};
  auto reader = [&](unsigned seed) {
    std::mt19937 rng(seed);
    std::vector<std::uint8_t> buf(2 * kPageSize);
    while (!stop.load(std::memory_order_relaxed)) {
      const bool first = rng() % 2 == 0;
      const cache::FileId id = first ? *f0 : *f1;
      const std::uint32_t tag = first ? 1 : 2;
      const std::uint64_t size = first ? kPages * kPageSize : kPages * kPageSize - 100;
      // Half the reads go to the hot pages 0-3, the rest anywhere.
      const std::uint64_t page = rng() % 2 ? rng() % 4 : rng() % kPages;
      const std::uint64_t off = page * kPageSize + rng() % 64;
      const std::size_t len = 1 + rng() % buf.size();
      auto n = cache.read(id, buf.data(), len, off);
      if (!n) {  // ENOBUFS is legal when every frame is pinned; nothing else
        if (n.error() != std::errc::no_buffer_space) bad.fetch_add(1);
        errors.fetch_add(1);
        continue;
      }
      if (*n != std::min<std::uint64_t>(len, size - off)) bad.fetch_add(1);
      for (std::size_t i = 0; i < *n; ++i) {
        if (buf[i] != pattern(tag, off + i)) {
          bad.fetch_add(1);
          break;
        }
      }
      if (rng() % 8 == 0) {  // pin: zero-copy view, held a little
        auto pinned = cache.pin(id, page);
        if (pinned) {
          for (std::size_t i = 0; i < pinned->size(); i += 512) {
            if (static_cast<std::uint8_t>(pinned->bytes()[i]) !=
                pattern(tag, page * kPageSize + i)) {
              bad.fetch_add(1);
            }
          }
        }
      }
      reads.fetch_add(1, std::memory_order_relaxed);
    }
  };
  std::vector<std::thread> threads;
  for (unsigned i = 0; i < 3; ++i) threads.emplace_back(reader, 10 + i);
  std::atomic<long> drops{0}, dropped{0};
  threads.emplace_back([&] {
    std::mt19937 rng(5);
    while (!stop.load(std::memory_order_relaxed)) {
      dropped.fetch_add(static_cast<long>(cache.drop().evicted));
      drops.fetch_add(1);
      const std::uint64_t off = (rng() % kPages) * kPageSize;
      (void)cache.advise(*f0, off, 3 * kPageSize, rng() % 2 ? Advice::Hot : Advice::Normal);
      (void)cache.advise(*f1, off, 2 * kPageSize, Advice::DontNeed);
      std::this_thread::yield();
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  stop.store(true);
  for (auto& t : threads) t.join();
  EXPECT_EQ(bad.load(), 0) << "a reader saw bytes of the wrong page";
  EXPECT_GT(reads.load(), 100);
  EXPECT_GT(drops.load(), 10);
  EXPECT_GT(dropped.load(), 0);
  EXPECT_LT(errors.load(), reads.load()) << "mostly failing reads make the test vacuous";
}

TYPED_TEST(CacheTest, BadInputsAreErrorsNotCrashes) {
  PageCache<TypeParam> cache(small(4));
  EXPECT_EQ(cache.open((this->dir.path() / "missing").string()).error(),
            std::errc::no_such_file_or_directory);
  EXPECT_EQ(cache.open(this->dir.path().string()).error(), std::errc::is_a_directory);
  const auto p = this->dir.make("f", 3, 3 * kPageSize + 10);
  auto id = cache.open(p);
  ASSERT_TRUE(id);
  char buf[64];
  EXPECT_EQ(*cache.read(*id, buf, sizeof buf, 100 * kPageSize), 0u) << "past EOF is a 0-byte read";
  EXPECT_EQ(*cache.read(*id, buf, 0, 0), 0u) << "zero length";
  EXPECT_EQ(*cache.read(*id, buf, sizeof buf, 3 * kPageSize), 10u) << "short read at EOF";
  EXPECT_EQ(cache.read(*id + 100, buf, 1, 0).error(), std::errc::bad_file_descriptor);
  EXPECT_EQ(cache.read(*id, nullptr, 1, 0).error(), std::errc::invalid_argument);
  EXPECT_EQ(cache.pin(*id, 4).error(), std::errc::invalid_argument) << "page past EOF";
  EXPECT_EQ(cache.advise(*id + 100, 0, 1, Advice::Hot).error(), std::errc::bad_file_descriptor);
  if (::geteuid() != 0) {  // root reads anything: the injected case below covers it
    const auto q = this->dir.make("secret", 4, 10);
    ::chmod(q.c_str(), 0);
    EXPECT_EQ(cache.open(q).error(), std::errc::permission_denied);
  }
  FaultyBackend fb;
  PageCache<TypeParam> faulty(small(4, &fb));
  fb.open_errno = EACCES;
  EXPECT_EQ(faulty.open(p).error(), std::errc::permission_denied);
}

TYPED_TEST(CacheTest, ReadErrorIsReturnedAndNotCachedThenRetried) {
  FaultyBackend fb;
  PageCache<TypeParam> cache(small(4, &fb));
  const auto p = this->dir.make("f", 5, 2 * kPageSize);
  auto id = cache.open(p);
  ASSERT_TRUE(id);
  std::vector<std::uint8_t> buf(kPageSize);
  fb.fail_preads = 1;
  auto r = cache.read(*id, buf.data(), kPageSize, 0);
  EXPECT_EQ(r.error(), std::errc::io_error);
  EXPECT_EQ(cache.stats().cached_pages, 0u) << "a failed read left a page cached";
  r = cache.read(*id, buf.data(), kPageSize, 0);  // the next read tries again
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, kPageSize);
  for (std::size_t i = 0; i < kPageSize; ++i) ASSERT_EQ(buf[i], pattern(5, i));
  // Short reads from the backend are completed, not cached short.
  fb.max_chunk = 100;
  r = cache.read(*id, buf.data(), kPageSize, kPageSize);
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, kPageSize);
  for (std::size_t i = 0; i < kPageSize; ++i) ASSERT_EQ(buf[i], pattern(5, kPageSize + i));
}

TYPED_TEST(CacheTest, TruncatedAndGrownFilesServeNoStaleBytesAfterRefresh) {
  PageCache<TypeParam> cache(small(8));
  const auto p = this->dir.make("f", 6, 3 * kPageSize);
  auto id = cache.open(p);
  ASSERT_TRUE(id);
  std::vector<std::uint8_t> buf(4 * kPageSize);
  ASSERT_EQ(*cache.read(*id, buf.data(), buf.size(), 0), 3 * kPageSize);  // all cached
  ASSERT_EQ(::truncate(p.c_str(), static_cast<off_t>(kPageSize + 50)), 0);
  auto sz = cache.refresh(*id);
  ASSERT_TRUE(sz);
  EXPECT_EQ(*sz, kPageSize + 50);
  EXPECT_EQ(*cache.read(*id, buf.data(), buf.size(), 0), kPageSize + 50)
      << "stale bytes past the new end";
  // Grow it with new content: the old partial page must not be served.
  this->dir.make("f", 7, 5 * kPageSize);
  ASSERT_TRUE(cache.refresh(*id));
  auto n = cache.read(*id, buf.data(), buf.size(), kPageSize);
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 4 * kPageSize);
  for (std::size_t i = 0; i < *n; ++i)
    ASSERT_EQ(buf[i], pattern(7, kPageSize + i)) << "offset " << i;
  EXPECT_EQ(cache.refresh(*id + 9).error(), std::errc::bad_file_descriptor);
}

TYPED_TEST(CacheTest, CacheTooSmallForThePinsInFlightIsAClearError) {
  PageCache<TypeParam> cache(small(2));
  const auto p = this->dir.make("f", 8, 4 * kPageSize);
  auto id = cache.open(p);
  ASSERT_TRUE(id);
  if (!TypeParam::kCounts) GTEST_SKIP() << "noop cannot tell a pinned frame from a free one";
  auto a = cache.pin(*id, 0), b = cache.pin(*id, 1);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(cache.pin(*id, 2).error(), std::errc::no_buffer_space);
  char c;
  EXPECT_EQ(cache.read(*id, &c, 1, 3 * kPageSize).error(), std::errc::no_buffer_space);
  a->reset();
  auto d = cache.pin(*id, 2);
  ASSERT_TRUE(d) << "a released pin did not make room";
  EXPECT_EQ(static_cast<std::uint8_t>(d->bytes()[0]), pattern(8, 2 * kPageSize));
}

TYPED_TEST(CacheTest, DropEvictsEveryUnpinnedPageAndNoPinnedOne) {
  PageCache<TypeParam> cache(small(16));
  const auto p = this->dir.make("f", 9, 12 * kPageSize);
  auto id = cache.open(p);
  ASSERT_TRUE(id);
  ASSERT_TRUE(cache.advise(*id, 0, 6 * kPageSize, Advice::Hot));  // half hot, half cold
  ASSERT_TRUE(cache.advise(*id, 0, 0, Advice::WillNeed));         // len 0: to the end
  EXPECT_EQ(cache.stats().cached_pages, 12u);
  EXPECT_EQ(cache.stats().distributed_pages, 6u);
  auto hot_pin = cache.pin(*id, 2), cold_pin = cache.pin(*id, 9);
  ASSERT_TRUE(hot_pin && cold_pin);
  const auto report = cache.drop();
  if (TypeParam::kCounts) {
    EXPECT_EQ(report.evicted, 10u);
    EXPECT_EQ(report.busy, 2u);
    EXPECT_EQ(cache.stats().cached_pages, 2u);
    EXPECT_EQ(static_cast<std::uint8_t>(hot_pin->bytes()[7]), pattern(9, 2 * kPageSize + 7));
  }
  EXPECT_GE(report.batches, 2u) << "16 frames in batches of 8";
  hot_pin->reset();
  cold_pin->reset();
  const auto again = cache.drop();
  EXPECT_EQ(cache.stats().cached_pages, 0u);
  EXPECT_EQ(cache.stats().free_frames, 16u);
  if (TypeParam::kCounts) {
    EXPECT_EQ(again.evicted, 2u);
  }
}

TYPED_TEST(CacheTest, HotSectionsSwitchCachedAndFuturePages) {
  PageCache<TypeParam> cache(small(16));
  const auto p = this->dir.make("f", 10, 8 * kPageSize);
  auto id = cache.open(p);
  ASSERT_TRUE(id);
  std::vector<char> buf(8 * kPageSize);
  ASSERT_EQ(*cache.read(*id, buf.data(), 2 * kPageSize, 0), 2 * kPageSize);  // pages 0-1 cached
  ASSERT_TRUE(cache.advise(*id, 0, 4 * kPageSize, Advice::Hot));
  EXPECT_EQ(cache.stats().distributed_pages, 2u) << "cached pages switch now";
  ASSERT_EQ(*cache.read(*id, buf.data(), buf.size(), 0), 8 * kPageSize);
  EXPECT_EQ(cache.stats().distributed_pages, 4u) << "pages loaded later start hot";
  ASSERT_TRUE(cache.advise(*id, kPageSize, kPageSize, Advice::Normal));
  EXPECT_EQ(cache.stats().distributed_pages, 3u);
  ASSERT_TRUE(cache.advise(*id, 0, 0, Advice::DontNeed));
  EXPECT_EQ(cache.stats().cached_pages, 0u);
  ASSERT_EQ(*cache.read(*id, buf.data(), buf.size(), 0), 8 * kPageSize);
  EXPECT_EQ(cache.stats().distributed_pages, 3u) << "the hot section outlives its pages";
}

TYPED_TEST(CacheTest, CloseKeepsPinsValidAndDropsTheRest) {
  PageCache<TypeParam> cache(small(16));
  const auto p = this->dir.make("f", 11, 8 * kPageSize);
  auto id = cache.open(p);
  ASSERT_TRUE(id);
  ASSERT_TRUE(cache.advise(*id, 0, 0, Advice::WillNeed));
  ASSERT_EQ(cache.stats().cached_pages, 8u);
  auto pin = cache.pin(*id, 3);
  ASSERT_TRUE(pin);
  ASSERT_TRUE(cache.close(*id));
  char c = 0;
  EXPECT_EQ(cache.read(*id, &c, 1, 0).error(), std::errc::bad_file_descriptor);
  EXPECT_EQ(cache.pin(*id, 0).error(), std::errc::bad_file_descriptor);
  EXPECT_EQ(cache.close(*id).error(), std::errc::bad_file_descriptor) << "closed twice";
  if (TypeParam::kCounts) {
    EXPECT_EQ(cache.stats().cached_pages, 0u) << "the pinned page is unlinked, not cached";
    for (std::size_t i = 0; i < pin->size(); i += 97)
      ASSERT_EQ(static_cast<std::uint8_t>(pin->bytes()[i]), pattern(11, 3 * kPageSize + i))
          << "a pin keeps its bytes valid across close()";
    EXPECT_EQ(cache.stats().free_frames, 15u);
  }
  pin->reset();
  EXPECT_TRUE(pin->bytes().empty());
  (void)cache.drop();  // the released, unlinked frame is reclaimed like any other
  EXPECT_EQ(cache.stats().free_frames, 16u);
  // Opened again: the same FileId, and the pages load afresh.
  auto again = cache.open(p);
  ASSERT_TRUE(again);
  EXPECT_EQ(*again, *id);
  ASSERT_EQ(*cache.read(*again, &c, 1, 5 * kPageSize + 1), 1u);
  EXPECT_EQ(static_cast<std::uint8_t>(c), pattern(11, 5 * kPageSize + 1));
}

TYPED_TEST(CacheTest, OpeningOneFileTwiceSharesItsPages) {
  PageCache<TypeParam> cache(small(16));
  const auto p = this->dir.make("f", 12, 4 * kPageSize);
  const auto link = (this->dir.path() / "hard-link").string();
  ASSERT_EQ(::link(p.c_str(), link.c_str()), 0);
  auto a = cache.open(p), b = cache.open(link), other = cache.open(this->dir.make("g", 13, 10));
  ASSERT_TRUE(a && b && other);
  EXPECT_EQ(*a, *b) << "the same inode under two names is one file";
  EXPECT_NE(*a, *other);
  ASSERT_TRUE(cache.advise(*a, 0, 0, Advice::WillNeed));
  EXPECT_EQ(cache.stats().cached_pages, 4u);
  char c = 0;
  ASSERT_EQ(*cache.read(*b, &c, 1, 2 * kPageSize), 1u);
  EXPECT_EQ(cache.stats().cached_pages, 4u) << "no second copy";
  EXPECT_EQ(cache.stats().misses, 4u);
  ASSERT_TRUE(cache.close(*a));  // one of two opens: still open
  ASSERT_EQ(*cache.read(*b, &c, 1, 0), 1u);
  EXPECT_EQ(static_cast<std::uint8_t>(c), pattern(12, 0));
  ASSERT_TRUE(cache.close(*b));  // the last one
  EXPECT_EQ(cache.read(*b, &c, 1, 0).error(), std::errc::bad_file_descriptor);
  ASSERT_EQ(*cache.read(*other, &c, 1, 3), 1u) << "other files are not affected";
}

TYPED_TEST(CacheTest, ManyMoreFilesThanTheInitialTable) {
  CacheOptions o = small(8);
  o.max_files = 16;  // the table's initial size only
  PageCache<TypeParam> cache(o);
  constexpr std::uint32_t kFiles = 1100;  // more than the old fixed limit of 1024
  std::vector<std::string> paths;
  std::vector<cache::FileId> ids;
  for (std::uint32_t i = 0; i < kFiles; ++i) {
    paths.push_back(this->dir.make("f" + std::to_string(i), 100 + i, 64));
    auto id = cache.open(paths.back());
    ASSERT_TRUE(id) << "open " << i << ": " << id.error().message();
    ids.push_back(*id);
    if (i % 3 == 0) {
      ASSERT_TRUE(cache.close(*id));  // some closed again
    }
  }
  for (std::uint32_t i = 0; i < kFiles; i += 37) {
    char c = 0;
    auto n = cache.read(ids[i], &c, 1, 7);
    if (i % 3 == 0) {
      EXPECT_EQ(n.error(), std::errc::bad_file_descriptor);
      auto id = cache.open(paths[i]);
      ASSERT_TRUE(id);
      EXPECT_EQ(*id, ids[i]) << "a closed file gets its FileId back";
      n = cache.read(*id, &c, 1, 7);
    }
    ASSERT_TRUE(n) << n.error().message();
    EXPECT_EQ(static_cast<std::uint8_t>(c), pattern(100 + i, 7));
  }
}

// Misses all the time: 2 and 3 threads over a file 16x the cache, every
// byte checked, pins held now and then. Run under ASAN and TSAN too.
TYPED_TEST(ConcurrentCacheTest, EvictionUnderThreadsWithAFileSixteenTimesTheCache) {
  using C = TypeParam;
  constexpr std::uint64_t kFrames = 8, kPages = 16 * kFrames;
  const auto p = this->dir.make("big", 14, kPages * kPageSize - 7);
  for (const unsigned nthreads : {2u, 3u}) {
    PageCache<C> cache(small(kFrames));
    auto id = cache.open(p);
    ASSERT_TRUE(id);
    if (nthreads == 3) {
      ASSERT_TRUE(cache.advise(*id, 0, 8 * kPageSize, Advice::Hot));
    }
    std::atomic<long> bad{0}, reads{0}, enobufs{0};
    auto reader = [&](unsigned seed) {
      std::mt19937 rng(seed);
      std::vector<std::uint8_t> buf(kPageSize + 100);
      for (int r = 0; r < 1500; ++r) {
        const std::uint64_t size = kPages * kPageSize - 7;
        const std::uint64_t off = rng() % size;
        const std::size_t len = 1 + rng() % buf.size();
        auto n = cache.read(*id, buf.data(), len, off);
        if (!n) {
          if (n.error() == std::errc::no_buffer_space) {
            enobufs.fetch_add(1);
          } else {
            bad.fetch_add(1);
          }
          continue;
        }
        if (*n != std::min<std::uint64_t>(len, size - off)) bad.fetch_add(1);
        for (std::size_t i = 0; i < *n; ++i) {
          if (buf[i] != pattern(14, off + i)) {
            bad.fetch_add(1);
            break;
          }
        }
        if (rng() % 16 == 0) {
          const std::uint64_t page = off / kPageSize;
          if (auto pinned = cache.pin(*id, page)) {
            for (std::size_t i = 0; i < pinned->size(); i += 61)
              if (static_cast<std::uint8_t>(pinned->bytes()[i]) !=
                  pattern(14, page * kPageSize + i))
                bad.fetch_add(1);
          }
        }
        reads.fetch_add(1, std::memory_order_relaxed);
      }
    };
    std::vector<std::thread> threads;
    for (unsigned t = 0; t < nthreads; ++t) threads.emplace_back(reader, 40 + t);
    for (auto& t : threads) t.join();
    const auto st = cache.stats();
    EXPECT_EQ(bad.load(), 0) << nthreads << " threads: wrong bytes, length or error";
    EXPECT_EQ(enobufs.load(), 0) << "8 frames hold " << nthreads << " readers' pins";
    EXPECT_GT(st.misses, st.hits / 4) << "the file is 16x the cache: mostly misses";
    EXPECT_GT(st.evictions, 100u);
    (void)cache.drop();  // Idle frames (lost publish races) go too
    EXPECT_EQ(cache.stats().free_frames, kFrames) << "no frame lost";
  }
}

TYPED_TEST(ConcurrentCacheTest, ClosingAFileWhileOthersReadAndMissOnIt) {
  using C = TypeParam;
  constexpr std::uint64_t kPages = 32;
  const auto p = this->dir.make("f", 15, kPages * kPageSize);
  PageCache<C> cache(small(8));
  auto first = cache.open(p);
  ASSERT_TRUE(first);
  const cache::FileId id = *first;
  std::atomic<bool> stop{false};
  std::atomic<long> bad{0}, ok{0}, closed_reads{0};
  auto reader = [&](unsigned seed) {
    std::mt19937 rng(seed);
    std::vector<std::uint8_t> buf(kPageSize);
    while (!stop.load(std::memory_order_relaxed)) {
      const std::uint64_t off = rng() % (kPages * kPageSize);
      const std::size_t len = 1 + rng() % buf.size();
      auto n = cache.read(id, buf.data(), len, off);
      if (!n) {
        if (n.error() == std::errc::bad_file_descriptor) {
          closed_reads.fetch_add(1);
        } else if (n.error() != std::errc::no_buffer_space) {
          bad.fetch_add(1);
        }
        continue;
      }
      for (std::size_t i = 0; i < *n; ++i)
        if (buf[i] != pattern(15, off + i)) {
          bad.fetch_add(1);
          break;
        }
      ok.fetch_add(1, std::memory_order_relaxed);
    }
  };
  std::vector<std::thread> threads;
  for (unsigned t = 0; t < 2; ++t) threads.emplace_back(reader, 60 + t);
  for (int round = 0; round < 30; ++round) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    ASSERT_TRUE(cache.close(id));
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    auto again = cache.open(p);
    ASSERT_TRUE(again);
    ASSERT_EQ(*again, id);
  }
  stop.store(true);
  for (auto& t : threads) t.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_GT(ok.load(), 100);
  EXPECT_GT(closed_reads.load(), 0) << "no read met a closed file: the test proves nothing";
  (void)cache.drop();  // Idle frames (pins of a closed file, lost races) go too
  EXPECT_EQ(cache.stats().free_frames, 8u) << "no frame lost";
}

TEST(CacheLifetime, ACacheDestroyedWithALivePinAbortsInDebugBuilds) {
#ifdef NDEBUG
  GTEST_SKIP() << "the live-pin check is compiled in debug builds only (NDEBUG is defined)";
#else
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  TempDir dir;
  const auto p = dir.make("f", 16, kPageSize);
  EXPECT_DEATH(
      {
        auto cache = std::make_unique<PageCache<Paygo> >(small(4));
        auto id = cache->open(p);
        auto pin = cache->pin(*id, 0);
        cache.reset();  // the pin outlives its cache
        std::_Exit(0);
      },
      "destroyed with 1 PinnedPage\\(s\\) still live");
#endif
}

TEST(CacheStats, EveryHitIsCountedPastMaxThreads) {
  TempDir dir;
  const auto p = dir.make("f", 17, kPageSize);
  for (const std::uint32_t max_threads : {2u, 1u << 20}) {
    CacheOptions o = small(4);
    o.max_threads = max_threads;
    PageCache<Paygo> cache(o);
    auto id = cache.open(p);
    ASSERT_TRUE(id);
    constexpr unsigned kThreads = 300;  // more than 256: the old shard limit
    constexpr int kReads = 50;
    std::latch all_alive(kThreads);  // every thread holds its slot at once
    std::vector<std::thread> threads;
    for (unsigned t = 0; t < kThreads; ++t) {
      threads.emplace_back([&] {
        char c;
        for (int r = 0; r < kReads; ++r)
          if (!cache.read(*id, &c, 1, 0)) std::abort();
        all_alive.arrive_and_wait();
      });
    }
    for (auto& t : threads) t.join();
    const auto st = cache.stats();
    EXPECT_EQ(st.hits + st.misses, std::uint64_t{kThreads} * kReads)
        << "max_threads " << max_threads;
    EXPECT_EQ(st.misses, 1u);
  }
}

TEST(CacheStats, PaygoTablesCostMemoryOnlyForHotPages) {
  TempDir dir;
  const auto p = dir.make("f", 11, 4 * kPageSize);
  PageCache<Paygo> cache(small(8));
  auto id = cache.open(p);
  ASSERT_TRUE(id);
  std::vector<char> buf(4 * kPageSize);
  ASSERT_TRUE(cache.read(*id, buf.data(), buf.size(), 0));
  EXPECT_EQ(cache.stats().counter_table_bytes, 0u) << "cold pages must not create tables";
  ASSERT_TRUE(cache.advise(*id, 0, 0, Advice::Hot));
  ASSERT_TRUE(cache.read(*id, buf.data(), buf.size(), 0));
  EXPECT_GT(cache.stats().counter_table_bytes, 0u);
}

// ---- self-tuning in the cache (Paygo): Normal is automatic, Central pins ----

/// A cache over a Paygo that promotes after a few events and sweeps often.
PageCache<Paygo> tuned_cache(std::size_t frames, std::uint32_t sweep_every) {
  CacheOptions opt;
  opt.capacity_bytes = frames * kPageSize;
  opt.sweep_every = sweep_every;
  opt.sweep_frames = 1024;
  Paygo::Options c;
  c.promote_events = 4;
  c.promote_window_us = 60'000'000;  // no test here races the window
  c.demote_sweeps = 2;
  c.inhibit_ms = 0;
  return PageCache<Paygo>(opt, c);
}

/// Page 0 of `id` seen contended by two threads: a pin held while another
/// thread reads it, then this thread reads it too.
void contend(PageCache<Paygo>& cache, cache::FileId id) {
  auto pin = cache.pin(id, 0);
  ASSERT_TRUE(pin);
  std::thread([&] {
    char b[64];
    for (int i = 0; i < 4; ++i) ASSERT_TRUE(cache.read(id, b, sizeof b, 0));
  }).join();
  char b[64];
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(cache.read(id, b, sizeof b, 0));
}

class CacheTune : public ::testing::Test {
 protected:
  TempDir dir;
  /// A new file of `pages` pages of pattern(tag, ·), opened in `cache`.
  cache::Result<cache::FileId> open_file(PageCache<Paygo>& cache, std::uint32_t tag,
                                         std::uint64_t pages) {
    return cache.open(dir.make("f", tag, pages * kPageSize));
  }
};

TEST_F(CacheTune, NormalPagesPromoteUnderContentionAndCoolDown) {
  auto cache = tuned_cache(8, 16);
  auto id = open_file(cache, 12, 4);
  ASSERT_TRUE(id);
  std::vector<char> buf(4 * kPageSize);
  ASSERT_TRUE(cache.read(*id, buf.data(), buf.size(), 0));
  EXPECT_EQ(cache.stats().distributed_pages, 0u) << "no hint: pages start central";
  contend(cache, *id);
  auto info = cache.page_info(*id, 0);
  ASSERT_TRUE(info);
  EXPECT_TRUE(info->cached);
  EXPECT_TRUE(info->promoted);
  EXPECT_FALSE(info->hinted);
  auto st = cache.stats();
  EXPECT_EQ(st.promotions, 1u);
  EXPECT_EQ(st.promoted_pages, 1u);
  EXPECT_EQ(st.hinted_pages, 0u);
  EXPECT_EQ(st.distributed_pages, 1u);
  EXPECT_NE(st.first_promotion_ns, 0);
  EXPECT_FALSE(cache.page_info(*id, 1)->promoted) << "an uncontended page was promoted";
  // Page 0 goes quiet while page 1 is read: the read path's sweep steps
  // (every ~16 hits) demote it.
  char b[64];
  for (int i = 0; i < 2000 && cache.page_info(*id, 0)->promoted; ++i)
    ASSERT_TRUE(cache.read(*id, b, sizeof b, kPageSize));
  EXPECT_FALSE(cache.page_info(*id, 0)->promoted) << "a quiet promoted page was not demoted";
  st = cache.stats();
  EXPECT_EQ(st.demotions, 1u);
  EXPECT_GT(st.sweeps, 0u);
  EXPECT_EQ(st.distributed_pages, 0u);
  // Its bytes are still right and it still evicts.
  ASSERT_TRUE(cache.read(*id, buf.data(), kPageSize, 0));
  EXPECT_EQ(static_cast<std::uint8_t>(buf[100]), pattern(12, 100));
  EXPECT_EQ(cache.drop().evicted, 4u);
}

TEST_F(CacheTune, CentralAndHotPinAndNormalUnpins) {
  auto cache = tuned_cache(8, 16);
  auto id = open_file(cache, 13, 4);
  ASSERT_TRUE(id);
  ASSERT_TRUE(cache.advise(*id, 0, kPageSize, Advice::Central));
  ASSERT_TRUE(cache.advise(*id, kPageSize, kPageSize, Advice::Hot));
  std::vector<char> buf(4 * kPageSize);
  ASSERT_TRUE(cache.read(*id, buf.data(), buf.size(), 0));
  contend(cache, *id);
  EXPECT_FALSE(cache.page_info(*id, 0)->promoted) << "a page advised Central was promoted";
  EXPECT_EQ(cache.stats().promotions, 0u);
  EXPECT_TRUE(cache.page_info(*id, 1)->hinted);
  char b[64];
  for (int i = 0; i < 500; ++i) ASSERT_TRUE(cache.read(*id, b, sizeof b, 2 * kPageSize));
  EXPECT_TRUE(cache.page_info(*id, 1)->hinted) << "sweeps demoted a Hot page";
  EXPECT_EQ(cache.stats().hinted_pages, 1u);
  // Normal hands both back to self-tuning: page 0 now promotes.
  ASSERT_TRUE(cache.advise(*id, 0, 2 * kPageSize, Advice::Normal));
  EXPECT_FALSE(cache.page_info(*id, 1)->hinted);
  EXPECT_EQ(cache.stats().distributed_pages, 0u);
  contend(cache, *id);
  EXPECT_TRUE(cache.page_info(*id, 0)->promoted);
  // Central also applies to pages loaded into the range later.
  ASSERT_TRUE(cache.advise(*id, 0, 0, Advice::DontNeed));
  ASSERT_TRUE(cache.advise(*id, 0, 0, Advice::Central));
  ASSERT_TRUE(cache.read(*id, buf.data(), buf.size(), 0));
  contend(cache, *id);
  EXPECT_FALSE(cache.page_info(*id, 0)->promoted);
  EXPECT_EQ(cache.page_info(*id + 7, 0).error(), std::errc::bad_file_descriptor);
}

TEST_F(CacheTune, SweepsCanBeTurnedOff) {
  auto cache = tuned_cache(8, 0);
  auto id = open_file(cache, 14, 2);
  ASSERT_TRUE(id);
  contend(cache, *id);
  ASSERT_TRUE(cache.page_info(*id, 0)->promoted);
  char b[64];
  for (int i = 0; i < 2000; ++i) ASSERT_TRUE(cache.read(*id, b, sizeof b, kPageSize));
  EXPECT_TRUE(cache.page_info(*id, 0)->promoted) << "sweep_every 0 swept";
  EXPECT_EQ(cache.stats().sweeps, 0u);
}

}  // namespace
}  // namespace paygo::test
