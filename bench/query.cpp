// bench/query.cpp — `paygo-bench query`: the query-overhead experiment.
//
// Cache a file of --file-size in paygo's page cache, advise the first
// --distributed percent of its pages Hot, let --touch-threads threads each
// read every page once (so every thread's slot has seen every hot page),
// then time the eviction of everything:
//   drop              PageCache::drop(): batches of frames, one heavy fence
//                     and one scan of the counter tables per batch
//   reclaim-per-page  the same, one page per batch (a fence per page), as a
//                     reclaimer without a batch query would do
//   drop-under-misses  (opt-in) --touch-threads threads read random pages of
//                     a second file twice the size, missing all the time,
//                     while the file is cached again and dropped --drops
//                     times: the drop's seconds, and the readers' throughput
//                     during each drop over their throughput just before it
//                     (readers_during_drop, the median over the drops)
// Result: seconds (lower is better), and the ratio to the 0% run.
//
// --after DRBZ: instead of the --distributed sweep, each point caches the
// file, lets --touch-threads threads run counting's DRBZ (Zipf reads) for
// --zipf-seconds (untimed), then times the same drop: the query cost of a
// cache whose pages self-tuning promoted (PAYGO, once per --hint) against
// the other counters' (advised Hot, as in counting).
#include <fmt/core.h>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "cache_points.hpp"
#include "commands.hpp"
#include "common.hpp"
#include "paygo/cache/page_cache.hpp"
#include "workfiles.hpp"
#include "zipf.hpp"

namespace paygo::bench {
namespace {

const std::vector<std::string> kWorkloads = {"drop", "reclaim-per-page", "drop-under-misses"};
const std::vector<std::string> kAfter = {"DRBZ"};
const std::vector<std::string> kHints = {"auto", "hot", "central"};

struct QueryOptions {
  std::uint64_t file_size = std::uint64_t{64} << 20;
  std::vector<unsigned> distributed = {0, 1, 10, 25, 50, 100};
  std::vector<std::string> touch_threads = {"2"};
  std::vector<std::string> counters = {"all"};
  std::vector<std::string> workloads = {"drop", "reclaim-per-page"};
  std::vector<std::string> after;  // empty: the --distributed sweep
  std::vector<std::string> hints = {"auto", "hot"};
  double zipf_seconds = 0.3;
  unsigned drops = 20;
  unsigned repeat = 3;
  std::string dir;
  std::string json, csv;
};

/// A page cache over counter C sized to hold the `size`-byte file at `path`
/// (holding_bytes()), with the file open in it.
template <class C>
struct CachedFile {
  CachedFile(const std::string& path, std::uint64_t size)
      : pages((size + cache::kPageSize - 1) / cache::kPageSize),
        pc(options(pages)),
        id(open_or_fail(pc, path)) {}
  /// Times drop() (`per_page`: drop(1)); every page must go.
  double drop(bool per_page) {
    const cache::DropReport report = pc.drop(per_page ? 1 : 0);
    if (report.evicted != pages) {
      throw PointFailed(
          fmt::format("drop evicted {} of {} pages ({} busy)", report.evicted, pages, report.busy));
    }
    return report.seconds;
  }
  /// Fails the point unless every page is cached.
  void check_cached(std::string_view when) const {
    if (const auto cached = pc.stats().cached_pages; cached != pages) {
      throw PointFailed(fmt::format("{} of {} pages cached {}", cached, pages, when));
    }
  }
  const std::uint64_t pages;
  cache::PageCache<C> pc;
  const cache::FileId id;

 private:
  static cache::CacheOptions options(std::uint64_t n) {
    cache::CacheOptions opt;
    opt.capacity_bytes = static_cast<std::size_t>(holding_bytes(n));
    return opt;
  }
};

template <class C>
double drop_once(const std::string& path, std::uint64_t size, unsigned pct, unsigned touchers,
                 bool per_page) {
  CachedFile<C> f(path, size);
  auto& pc = f.pc;
  const std::uint64_t pages = f.pages;
  const std::uint64_t hinted_pages = pages * pct / 100;
  if (hinted_pages != 0)
    advise_or_fail(pc, f.id, 0, hinted_pages * cache::kPageSize, cache::Advice::Hot);
  // Untimed: every toucher reads every page once (4 KiB reads).
  std::atomic<bool> failed{false};
  {
    std::vector<std::jthread> team;
    for (unsigned t = 0; t < touchers; ++t) {
      team.emplace_back([&, t] {
        pin_to_cpu_index(t);
        std::vector<char> buf(cache::kPageSize);
        for (std::uint64_t p = 0; p < pages; ++p) {
          auto r = pc.read(f.id, buf.data(), buf.size(), p * cache::kPageSize);
          // Relaxed: read after the joins below.
          if (!r) failed.store(true, std::memory_order_relaxed);
        }
      });
    }
  }
  if (failed.load(std::memory_order_relaxed)) throw PointFailed("a touching read failed");
  f.check_cached("after touching");
  return f.drop(per_page);
}

struct DropRun {
  double seconds = 0;
  TuneSample tune;
};

/// --after DRBZ: cache the whole file (advice per `hint`), `touchers`
/// threads read Zipf-drawn blocks for `zipf_seconds`, then drop() is timed.
template <class C>
DropRun drop_after_zipf(const std::string& path, std::uint64_t size, unsigned touchers,
                        const std::string& hint, double zipf_seconds, const Zipf& zipf,
                        bool per_page) {
  CachedFile<C> f(path, size);
  auto& pc = f.pc;
  if (const cache::Advice advice = advice_for(hint); advice != cache::Advice::Normal) {
    advise_or_fail(pc, f.id, 0, 0, advice);
  }
  advise_or_fail(pc, f.id, 0, 0, cache::Advice::WillNeed);
  FirstRead first_read;
  run_team(
      touchers, zipf_seconds, [&](unsigned) { first_read.mark(); },
      [&](unsigned i, const std::atomic<bool>& stop) -> std::uint64_t {
        alignas(64) char buf[cache::kPageSize];
        ZipfCursor draws(zipf, i);
        std::uint64_t n = 0;
        while (!stop.load(std::memory_order_relaxed)) {  // relaxed: only "stop soon"
          auto r = pc.read(f.id, buf, sizeof buf, draws.next() * cache::kPageSize);
          if (!r) throw PointFailed("a Zipf read failed");
          ++n;
        }
        return n;
      });
  f.check_cached("before the drop");
  DropRun out;
  out.tune = tune_sample(pc, pc.stats(), first_read, f.id, &zipf);
  out.seconds = f.drop(per_page);
  return out;
}

/// A row of `query`: seconds (lower is better), io cache.
Result query_row(const std::string& workload, std::string_view counter, unsigned threads,
                 std::optional<double> pct, const std::vector<double>& seconds) {
  return Result{"query", workload, std::string(counter), std::string("cache"),
                threads, pct,      summarize(seconds),   "s"};
}

struct UnderMisses {
  std::vector<double> seconds, ratios;  // one per drop
};

/// drop-under-misses: `readers` threads read uniformly random pages of
/// `miss_path` (twice the cache's file, so they keep missing and evicting)
/// while the main thread, `drops` times, caches `path` again (WillNeed),
/// lets the readers run a base window, then drops. Each drop gives its
/// seconds and the readers' reads/s during it over those of the window.
template <class C>
UnderMisses drop_under_misses(const std::string& path, std::uint64_t size,
                              const std::string& miss_path, unsigned readers, unsigned drops) {
  CachedFile<C> f(path, size);
  auto& pc = f.pc;
  const cache::FileId miss_id = open_or_fail(pc, miss_path);
  const std::uint64_t miss_pages = 2 * f.pages;
  struct alignas(64) Count {
    std::atomic<std::uint64_t> reads{0};  // one writer: plain load + store
  };
  std::vector<Count> counts(readers);
  std::atomic<bool> stop{false}, failed{false};
  auto total = [&] {
    std::uint64_t n = 0;
    for (auto& c : counts) n += c.reads.load(std::memory_order_relaxed);  // a sample
    return n;
  };
  UnderMisses out;
  {
    std::vector<std::jthread> team;
    for (unsigned t = 0; t < readers; ++t) {
      team.emplace_back([&, t] {
        pin_to_cpu_index(t);
        std::uint64_t x = 0x9E3779B97F4A7C15ULL * (t + 1);
        alignas(64) char buf[cache::kPageSize];
        auto& c = counts[t].reads;
        while (!stop.load(std::memory_order_relaxed)) {  // relaxed: only "stop soon"
          x ^= x << 13;
          x ^= x >> 7;
          x ^= x << 17;
          if (!pc.read(miss_id, buf, sizeof buf, (x % miss_pages) * cache::kPageSize)) {
            failed.store(true, std::memory_order_relaxed);  // read after the joins
            break;
          }
          c.store(c.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
        }
      });
    }
    const auto window = std::chrono::milliseconds(30);
    for (unsigned d = 0; d < drops && !failed.load(std::memory_order_relaxed); ++d) {
      if (auto r = pc.advise(f.id, 0, 0, cache::Advice::WillNeed); !r) {
        failed.store(true, std::memory_order_relaxed);
        break;
      }
      const auto b0 = std::chrono::steady_clock::now();
      const std::uint64_t n0 = total();
      std::this_thread::sleep_for(window);
      const auto b1 = std::chrono::steady_clock::now();
      const std::uint64_t n1 = total();
      const cache::DropReport report = pc.drop();
      const auto b2 = std::chrono::steady_clock::now();
      const std::uint64_t n2 = total();
      const double before =
          static_cast<double>(n1 - n0) / std::chrono::duration<double>(b1 - b0).count();
      const double during =
          static_cast<double>(n2 - n1) / std::chrono::duration<double>(b2 - b1).count();
      out.seconds.push_back(report.seconds);
      out.ratios.push_back(before > 0 ? during / before : 0.0);
    }
    stop.store(true, std::memory_order_relaxed);
  }
  if (failed.load(std::memory_order_relaxed)) throw PointFailed("a read or WillNeed failed");
  return out;
}

int run_after(const QueryOptions& opt, const std::string& after, std::uint64_t size,
              const std::string& path, const std::vector<unsigned>& touchers,
              const std::vector<std::string>& counters, const std::vector<std::string>& workloads,
              const std::vector<std::string>& hints, Outputs& outputs) {
  const std::uint64_t pages = (size + cache::kPageSize - 1) / cache::kPageSize;
  if (pages > (std::uint64_t{1} << 32)) throw UsageError("--file-size: at most 2^32 pages");
  const Zipf zipf(pages, *std::max_element(touchers.begin(), touchers.end()));
  std::size_t points = 0;
  for_each_selected(counters, [&]<class C>() {
    points += std::string_view(C::kName) == "paygo" ? hints.size() : 1;
  });
  Progress progress(workloads.size() * touchers.size() * points);
  std::vector<Result> results;
  unsigned failures = 0;
  for (const auto& w : workloads) {
    for (unsigned t : touchers) {
      for_each_selected(counters, [&]<class C>() {
        const bool paygo = std::string_view(C::kName) == "paygo";
        for (const std::string& h : paygo ? hints : std::vector<std::string>{"hot"}) {
          const std::string what = fmt::format("query {} after {} {} hint={} touch-threads={}", w,
                                               after, C::kName, h, t);
          std::vector<double> samples;
          std::vector<TuneSample> tune;
          try {
            for (unsigned r = 0; r < opt.repeat; ++r) {
              DropRun run = drop_after_zipf<C>(path, size, t, h, opt.zipf_seconds, zipf,
                                               w == "reclaim-per-page");
              samples.push_back(run.seconds);
              tune.push_back(run.tune);
            }
          } catch (const PointFailed& e) {
            ++failures;
            progress.report(what, fmt::format("FAILED: {}", e.what()));
            continue;
          }
          Result res = query_row(w, C::kName, t, std::nullopt, samples);
          res.hint = h;
          res.after = after;
          set_tuning(res, tune, kTunes<C>);
          progress.report(what, fmt::format("{} (median of {}), {:g} pages distributed",
                                            human(res.stats.median, "s"), samples.size(),
                                            res.distributed_pages.value_or(0)));
          results.push_back(std::move(res));
        }
      });
    }
  }
  nlohmann::json config = {{"command", "query"},
                           {"file_size_bytes", size},
                           {"after", after},
                           {"hints", hints},
                           {"zipf_theta", kZipfTheta},
                           {"zipf_seconds", opt.zipf_seconds},
                           {"touch_threads", touchers},
                           {"counters", counters},
                           {"workloads", workloads},
                           {"repeat", opt.repeat}};
  outputs.write(config, results);
  print_tables(results);
  return outputs.finish(failures);
}

int run_query(const QueryOptions& opt) {
  const std::uint64_t size = opt.file_size;
  const std::vector<unsigned>& distributed = opt.distributed;
  require_distinct(distributed, "--distributed");
  const auto touchers = expand_counts(opt.touch_threads);
  const auto counters = selected(opt.counters, all_counter_names(), "--counters");
  const auto workloads = selected(opt.workloads, kWorkloads, "--workloads");
  const bool after = !opt.after.empty();
  std::string after_name;
  if (after) {
    const auto names = selected(opt.after, kAfter, "--after");
    if (names.size() != 1) throw UsageError("--after: one workload only");
    after_name = names.front();
  }
  const auto hints = selected(opt.hints, kHints, "--hint");
  Outputs outputs(opt.json, opt.csv);
  ScratchDir dir(opt.dir);
  const bool under_misses =
      std::find(workloads.begin(), workloads.end(), "drop-under-misses") != workloads.end();
  if (under_misses && after) throw UsageError("--after: not with the drop-under-misses workload");
  const std::string path = dir.make_file("query", size);
  if (after)
    return run_after(opt, after_name, size, path, touchers, counters, workloads, hints, outputs);
  const std::string miss_path = under_misses ? dir.make_file("query-miss", 2 * size) : "";

  std::size_t points = 0;
  for (const auto& w : workloads)
    points +=
        touchers.size() * counters.size() * (w == "drop-under-misses" ? 1 : distributed.size());
  Progress progress(points);
  std::vector<Result> results;
  unsigned failures = 0;
  for (const auto& w : workloads) {
    for (unsigned t : touchers) {
      if (w == "drop-under-misses") {  // no --distributed sweep: automatic counting
        for_each_selected(counters, [&]<class C>() {
          const std::string what = fmt::format("query {} {} miss-threads={}", w, C::kName, t);
          UnderMisses run;
          try {
            for (unsigned r = 0; r < opt.repeat; ++r) {
              UnderMisses one = drop_under_misses<C>(path, size, miss_path, t, opt.drops);
              run.seconds.insert(run.seconds.end(), one.seconds.begin(), one.seconds.end());
              run.ratios.insert(run.ratios.end(), one.ratios.begin(), one.ratios.end());
            }
          } catch (const PointFailed& e) {
            ++failures;
            progress.report(what, fmt::format("FAILED: {}", e.what()));
            return;
          }
          Result res = query_row(w, C::kName, t, std::nullopt, run.seconds);
          res.hint = "auto";
          res.readers_during_drop = summarize(run.ratios).median;
          progress.report(what, fmt::format("drop {} (median of {}), readers during it {:.3f}x",
                                            human(res.stats.median, "s"), run.seconds.size(),
                                            *res.readers_during_drop));
          results.push_back(std::move(res));
        });
        continue;
      }
      for (unsigned pct : distributed) {
        for_each_selected(counters, [&]<class C>() {
          const std::string what =
              fmt::format("query {} {} touch-threads={} distributed={}%", w, C::kName, t, pct);
          std::vector<double> samples;
          try {
            for (unsigned r = 0; r < opt.repeat; ++r) {
              samples.push_back(drop_once<C>(path, size, pct, t, w == "reclaim-per-page"));
            }
          } catch (const PointFailed& e) {
            ++failures;
            progress.report(what, fmt::format("FAILED: {}", e.what()));
            return;
          }
          Result res = query_row(w, C::kName, t, static_cast<double>(pct), samples);
          progress.report(
              what, fmt::format("{} (median of {})", human(res.stats.median, "s"), samples.size()));
          results.push_back(std::move(res));
        });
      }
    }
  }
  nlohmann::json config = {{"command", "query"},         {"file_size_bytes", size},
                           {"distributed", distributed}, {"touch_threads", touchers},
                           {"counters", counters},       {"workloads", workloads},
                           {"drops", opt.drops},         {"repeat", opt.repeat}};
  outputs.write(config, results);
  print_tables(results);
  // The seed's figure of merit: each point against the same counter at 0%.
  std::map<std::tuple<std::string, std::string, unsigned>, double> zero;
  for (const auto& r : results) {
    if (r.distributed_pct == 0.0) zero[{r.workload, r.counter, r.threads}] = r.stats.median;
  }
  fmt::print("\nquery: median / median at 0% distributed (same counter, workload, threads)\n");
  fmt::print("{:<18} {:<14} {:>7} {:>6} {:>10} {:>8}\n", "workload", "counter", "threads", "dist%",
             "median", "/0%");
  for (const auto& r : results) {
    if (!r.distributed_pct) continue;  // drop-under-misses: no sweep
    const auto it = zero.find({r.workload, r.counter, r.threads});
    fmt::print("{:<18} {:<14} {:>7} {:>6g} {:>10} {:>8}\n", r.workload, r.counter, r.threads,
               *r.distributed_pct, human(r.stats.median, "s"),
               it == zero.end() || it->second <= 0
                   ? std::string("-")
                   : fmt::format("{:.3f}", r.stats.median / it->second));
  }
  return outputs.finish(failures);
}

}  // namespace

Subcommand add_query_command(CLI::App& app) {
  auto opt = std::make_shared<QueryOptions>();
  CLI::App* sub = app.add_subcommand(
      "query",
      "Query overhead: the time to evict a cached file whose pages are partly hot.\n"
      "For each counter, --touch-threads value and --distributed percentage: cache a file of\n"
      "--file-size in paygo's page cache (capacity = the file), advise the first D% of its\n"
      "pages Hot, let T threads each read every page once (untimed), then time:\n"
      "  drop              drop(): one heavy fence and one counter-table scan per batch of\n"
      "                    1024 frames (the user-space echo 1 > /proc/sys/vm/drop_caches)\n"
      "  reclaim-per-page  drop(1): the same page by page, one fence per page\n"
      "Every page must be evicted (else the point fails). Result: seconds, lower is better;\n"
      "a last table gives each median over the same counter's median at 0%.\n"
      "--after DRBZ: no --distributed sweep; instead the whole file is cached (PAYGO once\n"
      "per --hint: auto = no advice, hot = advised Hot, central; the others advised Hot),\n"
      "T threads run counting's DRBZ Zipf reads for --zipf-seconds (untimed), then the drop\n"
      "is timed; rows carry hint, after and the pages distributed before the drop.\n"
      "drop-under-misses (opt-in, no sweep, no --after): T = --touch-threads threads read\n"
      "random pages of a second file of twice --file-size (they keep missing) while the\n"
      "file is cached (WillNeed) and dropped --drops times per repeat; rows give the drops'\n"
      "seconds and readers_during_drop, the median over the drops of the readers' reads/s\n"
      "while the drop ran over their reads/s in the 30 ms just before it.\n"
      "Exit code: 0 ok, 1 a point failed, 2 bad arguments.");
  size_option(sub->add_option("--file-size", opt->file_size,
                              "Bytes to cache: 4096, 512K, 64M, 1G, ... (K, M, G, T are powers "
                              "of 1024, also written KB or KiB). Default: 64M"));
  add_list(sub, "--distributed", opt->distributed,
           "Comma-separated percentages of the pages advised Hot, 0..100")
      ->check(CLI::Range(0U, 100U));
  add_list(sub, "--touch-threads", opt->touch_threads,
           "Comma-separated counts of threads that read every page before the drop, ranges "
           "allowed (1,2,4 or 1-8)")
      ->check(count_or_range(1024));
  add_counters(sub, opt->counters);
  add_names(sub, "--workloads", opt->workloads, kWorkloads, "Comma-separated workloads");
  sub->add_option("--drops", opt->drops,
                  "drop-under-misses: drops per repeat, each one measured, 1..100000")
      ->check(CLI::Range(1U, 100000U))
      ->capture_default_str();
  add_names(sub, "--after", opt->after, kAfter,
            "Run this workload before each drop instead of the --distributed sweep");
  add_names(sub, "--hint", opt->hints, kHints,
            "With --after: comma-separated hints for the paygo rows");
  sub->add_option("--zipf-seconds", opt->zipf_seconds,
                  "With --after DRBZ: seconds of Zipf reads before each drop (untimed), > 0")
      ->check(seconds())
      ->capture_default_str();
  add_repeat(sub, opt->repeat);
  add_dir(sub, opt->dir);
  add_outputs(sub, opt->json, opt->csv);
  return {sub, [opt] { return run_query(*opt); }};
}

}  // namespace paygo::bench
