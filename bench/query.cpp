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
  std::string file_size = "64M";
  std::string distributed = "0,1,10,25,50,100";
  std::string touch_threads = "2";
  std::string counters = "all";
  std::string workloads = "drop,reclaim-per-page";
  std::string after;
  CLI::Option* after_opt = nullptr;
  std::string hints = "auto,hot";
  double zipf_seconds = 0.3;
  unsigned drops = 20;
  unsigned repeat = 3;
  std::string dir;
  std::string json, csv;
};

/// "0,1,10,100" -> {0,1,10,100}; each in [0, 100], no duplicates, not empty.
std::vector<unsigned> parse_percentages(const std::string& text, std::string_view flag) {
  std::vector<unsigned> out;
  std::size_t start = 0;
  while (start <= text.size()) {
    const std::size_t end = std::min(text.find(',', start), text.size());
    const std::string part = text.substr(start, end - start);
    std::size_t used = 0;
    unsigned long v = 101;
    try {
      v = std::stoul(part, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (part.empty() || used != part.size() || v > 100) {
      throw UsageError(fmt::format("{}: '{}' is not a percentage in 0..100", flag, part));
    }
    if (std::find(out.begin(), out.end(), v) != out.end()) {
      throw UsageError(fmt::format("{}: {} is listed twice", flag, v));
    }
    out.push_back(static_cast<unsigned>(v));
    start = end + 1;
  }
  return out;
}

template <class C>
double drop_once(const std::string& path, std::uint64_t size, unsigned pct, unsigned touchers,
                 bool per_page) {
  const std::uint64_t pages = (size + cache::kPageSize - 1) / cache::kPageSize;
  cache::CacheOptions opt;
  // Room for every page, plus a little for frames that concurrent missers
  // of one page take and give back.
  opt.capacity_bytes = static_cast<std::size_t>((pages + pages / 16 + 64) * cache::kPageSize);
  cache::PageCache<C> pc(opt);
  auto id = pc.open(path);
  if (!id) throw PointFailed(fmt::format("open: {}", id.error().message()));
  const std::uint64_t hot_pages = pages * pct / 100;
  if (hot_pages != 0) {
    if (auto r = pc.advise(*id, 0, hot_pages * cache::kPageSize, cache::Advice::Hot); !r) {
      throw PointFailed(fmt::format("advise: {}", r.error().message()));
    }
  }
  // Untimed: every toucher reads every page once (4 KiB reads).
  std::atomic<bool> failed{false};
  {
    std::vector<std::jthread> team;
    for (unsigned t = 0; t < touchers; ++t) {
      team.emplace_back([&, t] {
        pin_to_cpu_index(t);
        std::vector<char> buf(cache::kPageSize);
        for (std::uint64_t p = 0; p < pages; ++p) {
          auto r = pc.read(*id, buf.data(), buf.size(), p * cache::kPageSize);
          // Relaxed: read after the joins below.
          if (!r) failed.store(true, std::memory_order_relaxed);
        }
      });
    }
  }
  if (failed.load(std::memory_order_relaxed)) throw PointFailed("a touching read failed");
  const auto before = pc.stats();
  if (before.cached_pages != pages) {
    throw PointFailed(
        fmt::format("{} of {} pages cached after touching", before.cached_pages, pages));
  }
  const cache::DropReport report = pc.drop(per_page ? 1 : 0);
  if (report.evicted != pages) {
    throw PointFailed(
        fmt::format("drop evicted {} of {} pages ({} busy)", report.evicted, pages, report.busy));
  }
  return report.seconds;
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
  const std::uint64_t pages = (size + cache::kPageSize - 1) / cache::kPageSize;
  cache::CacheOptions opt;
  opt.capacity_bytes = static_cast<std::size_t>((pages + pages / 16 + 64) * cache::kPageSize);
  cache::PageCache<C> pc(opt);
  auto id = pc.open(path);
  if (!id) throw PointFailed(fmt::format("open: {}", id.error().message()));
  const cache::Advice advice = hint == "auto"      ? cache::Advice::Normal
                               : hint == "central" ? cache::Advice::Central
                                                   : cache::Advice::Hot;
  if (advice != cache::Advice::Normal) {
    if (auto r = pc.advise(*id, 0, 0, advice); !r)
      throw PointFailed(fmt::format("advise: {}", r.error().message()));
  }
  if (auto r = pc.advise(*id, 0, 0, cache::Advice::WillNeed); !r)
    throw PointFailed(fmt::format("advise(WillNeed): {}", r.error().message()));
  std::atomic<std::int64_t> first_read_ns{0};
  run_team(
      touchers, zipf_seconds,
      [&](unsigned) {
        std::int64_t zero = 0;
        // Relaxed: a timestamp, read after the joins.
        first_read_ns.compare_exchange_strong(
            zero,
            std::chrono::duration_cast<std::chrono::nanoseconds>(
                std::chrono::steady_clock::now().time_since_epoch())
                .count(),
            std::memory_order_relaxed);
      },
      [&](unsigned i, const std::atomic<bool>& stop) -> std::uint64_t {
        alignas(64) char buf[cache::kPageSize];
        const std::uint32_t* draws = zipf.draws[i].data();
        std::size_t k = 0;
        std::uint64_t n = 0;
        while (!stop.load(std::memory_order_relaxed)) {  // relaxed: only "stop soon"
          auto r = pc.read(*id, buf, sizeof buf, std::uint64_t{draws[k]} * cache::kPageSize);
          if (!r) throw PointFailed("a Zipf read failed");
          k = (k + 1) & (kZipfDraws - 1);
          ++n;
        }
        return n;
      });
  const cache::CacheStats before = pc.stats();
  if (before.cached_pages != pages) {
    throw PointFailed(
        fmt::format("{} of {} pages cached before the drop", before.cached_pages, pages));
  }
  DropRun out;
  out.tune.promotions = static_cast<double>(before.promotions);
  out.tune.demotions = static_cast<double>(before.demotions);
  out.tune.distributed_pages = static_cast<double>(before.distributed_pages);
  out.tune.promoted_pages = static_cast<double>(before.promoted_pages);
  const std::int64_t first = first_read_ns.load(std::memory_order_relaxed);
  if (before.first_promotion_ns != 0 && first != 0)
    out.tune.first_promotion_s = static_cast<double>(before.first_promotion_ns - first) / 1e9;
  double share = 0;
  for (std::uint64_t p = 0; p < pages; ++p) {
    auto info = pc.page_info(*id, p);
    if (info && info->promoted) share += zipf.prob[p];
  }
  out.tune.promoted_read_share = share;
  const cache::DropReport report = pc.drop(per_page ? 1 : 0);
  if (report.evicted != pages) {
    throw PointFailed(
        fmt::format("drop evicted {} of {} pages ({} busy)", report.evicted, pages, report.busy));
  }
  out.seconds = report.seconds;
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
  const std::uint64_t pages = (size + cache::kPageSize - 1) / cache::kPageSize;
  const std::uint64_t miss_pages = 2 * pages;
  cache::CacheOptions opt;
  opt.capacity_bytes = static_cast<std::size_t>((pages + pages / 16 + 64) * cache::kPageSize);
  cache::PageCache<C> pc(opt);
  auto id = pc.open(path);
  auto miss_id = pc.open(miss_path);
  if (!id || !miss_id) throw PointFailed("open failed");
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
          if (!pc.read(*miss_id, buf, sizeof buf, (x % miss_pages) * cache::kPageSize)) {
            failed.store(true, std::memory_order_relaxed);  // read after the joins
            break;
          }
          c.store(c.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
        }
      });
    }
    const auto window = std::chrono::milliseconds(30);
    for (unsigned d = 0; d < drops && !failed.load(std::memory_order_relaxed); ++d) {
      if (auto r = pc.advise(*id, 0, 0, cache::Advice::WillNeed); !r) {
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
  const std::uint64_t size = parse_size(opt.file_size, "--file-size");
  const auto distributed = parse_percentages(opt.distributed, "--distributed");
  const auto touchers = parse_count_list(opt.touch_threads, "--touch-threads", 1024);
  const auto counters = parse_name_list(opt.counters, "--counters", all_counter_names());
  const auto workloads = parse_name_list(opt.workloads, "--workloads", kWorkloads);
  if (opt.repeat == 0 || opt.repeat > 1000) {
    throw UsageError(fmt::format("--repeat: {} is out of range [1, 1000]", opt.repeat));
  }
  const bool after = !opt.after.empty();
  if (opt.after_opt != nullptr && opt.after_opt->count() > 0 && opt.after.empty())
    throw UsageError("--after: empty; give DRBZ, or leave --after out for the --distributed sweep");
  std::string after_name;
  if (after) {
    const auto names = parse_name_list(opt.after, "--after", kAfter);
    if (names.size() != 1) throw UsageError("--after: one workload only");
    after_name = names.front();
  }
  const auto hints = parse_name_list(opt.hints, "--hint", kHints);
  check_duration(opt.zipf_seconds, "--zipf-seconds");
  Outputs outputs(opt.json, opt.csv);
  ScratchDir dir(opt.dir);
  const bool under_misses =
      std::find(workloads.begin(), workloads.end(), "drop-under-misses") != workloads.end();
  if (under_misses && after) throw UsageError("--after: not with the drop-under-misses workload");
  if (opt.drops == 0 || opt.drops > 100000)
    throw UsageError(fmt::format("--drops: {} is out of range [1, 100000]", opt.drops));
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
  sub->add_option("--file-size", opt->file_size, "Bytes to cache: 4096, 512K, 64M, 1G, ...")
      ->capture_default_str();
  sub->add_option("--distributed", opt->distributed,
                  "Comma-separated percentages of the pages advised Hot, 0..100")
      ->capture_default_str();
  sub->add_option("--touch-threads", opt->touch_threads,
                  "Comma-separated counts of threads that read every page before the drop")
      ->capture_default_str();
  sub->add_option(
         "--counters", opt->counters,
         "Comma-separated counter names, or 'all'. Known: " + join(all_counter_names(), ","))
      ->capture_default_str();
  sub->add_option("--workloads", opt->workloads,
                  "Comma-separated: drop, reclaim-per-page, drop-under-misses")
      ->capture_default_str();
  sub->add_option("--drops", opt->drops,
                  "drop-under-misses: drops per repeat, each one measured, 1..100000")
      ->capture_default_str();
  opt->after_opt = sub->add_option(
      "--after", opt->after,
      "Run this workload before each drop instead of the --distributed sweep: DRBZ");
  sub->add_option("--hint", opt->hints,
                  "With --after: comma-separated hints for the paygo rows: auto, hot, central, "
                  "or 'all'")
      ->capture_default_str();
  sub->add_option("--zipf-seconds", opt->zipf_seconds,
                  "With --after DRBZ: seconds of Zipf reads before each drop (untimed), > 0")
      ->capture_default_str();
  sub->add_option("--repeat", opt->repeat, "Repeats per point, 1..1000")->capture_default_str();
  sub->add_option("--dir", opt->dir,
                  "Where to create the scratch file (removed at exit). Default: $TMPDIR or /tmp")
      ->option_text("DIR");
  sub->add_option("--json", opt->json, "Write {machine, config, results} as JSON to FILE")
      ->option_text("FILE");
  sub->add_option("--csv", opt->csv, "Write the results as CSV to FILE")->option_text("FILE");
  return {sub, [opt] { return run_query(*opt); }};
}

}  // namespace paygo::bench
