// bench/common.hpp — the one harness every paygo-bench subcommand shares.
//
// What it gives a subcommand:
//   * the options the subcommands share, and what CLI11 does not do alone
//     for lists (ranges N-M, "all", a name given twice); a bad command line
//     is a CLI11 error or a UsageError (main() prints it, exit code 2);
//   * the counter list as names, and a dispatcher that instantiates a
//     template once per selected counter (no virtual calls on hot paths);
//   * PAYGO's --slot-mode list (the paygo rows run once per mode);
//   * run_team(): T threads pinned round-robin to the CPUs this process may
//     use, started together by a std::latch, stopped by an atomic flag,
//     counting their operations in locals and adding them once at the end;
//   * summarize(): median/min/max of repeats;
//   * Result rows in one schema (bench/README.md), written as JSON and CSV
//     with the machine description, and printed as tables with ratios to
//     the `noop`, `atomic` and `kernel` (pread) baselines;
//   * Progress: one line per measured point on stderr.
//
// When not to use: for measurements below a microsecond per point (thread
// start-up and clock reads dominate); use google-benchmark for those.
#pragma once

#include <fmt/ranges.h>  // fmt::join

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <latch>
#include <nlohmann/json.hpp>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "paygo/baselines/counter_list.hpp"
#include "paygo/config.hpp"

namespace paygo::bench {

// The benchmarks run every counter, baselines included.
using namespace paygo::baselines;

/// A bad command line: main() prints "paygo-bench: error: <what>" and exits 2.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// One point could not be measured (the counter misbehaved); the subcommand
/// reports it, goes on with the other points and exits 1 at the end.
struct PointFailed : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// ---- arguments ------------------------------------------------------------
//
// Parsing is CLI11's: lists are split by ->delimiter(','), names checked by
// CLI::IsMember, numbers by CLI::Range, sizes converted by CLI::AsSizeValue.
// Here is what CLI11 does not say alone.

/// Adds `flag`, a comma-separated list, into `values` (its contents are the
/// default). One argument per occurrence, and a repeated option replaces the
/// earlier list (the last value wins, as main() makes it for every option).
/// CLI11 skips empty items ("a,,b" is "a,b"); an empty list ("," or "") is
/// an error.
template <class T>
CLI::Option* add_list(CLI::App* app, const std::string& flag, std::vector<T>& values,
                      const std::string& help) {
  CLI::Option* o = app->add_option(flag, values, help)
                       ->delimiter(',')
                       ->allow_extra_args(false)
                       ->trigger_on_parse();
  if (!values.empty()) o->default_str(fmt::format("{}", fmt::join(values, ",")));
  return o;
}

/// add_list() of names, each one of `names` or "all" (CLI::IsMember);
/// selected() gives the names it selects.
CLI::Option* add_names(CLI::App* app, const std::string& flag, std::vector<std::string>& values,
                       std::vector<std::string> names, const std::string& help);
/// The names of a list from add_names(): every one of `names` for "all",
/// else the list as given. UsageError for a name given twice or "all" in a
/// longer list.
std::vector<std::string> selected(const std::vector<std::string>& given,
                                  const std::vector<std::string>& names, std::string_view flag);
/// UsageError naming `flag` if a value is given twice.
template <class T>
void require_distinct(const std::vector<T>& values, std::string_view flag) {
  for (auto it = values.begin(); it != values.end(); ++it) {
    if (std::find(values.begin(), it, *it) != it) {
      throw UsageError(fmt::format("{}: '{}' given twice", flag, *it));
    }
  }
}

/// A check for each item of a list of counts: N or a range N-M ("1-4"), with
/// 1 <= N <= M <= max. expand_counts() turns the items into the counts.
CLI::Validator count_or_range(unsigned max);
/// {"1", "3-5"} -> {1, 3, 4, 5}: the items count_or_range() accepted.
std::vector<unsigned> expand_counts(const std::vector<std::string>& items);
/// A positive, finite number of seconds, at most an hour (CLI::Range alone
/// would let "nan" through).
CLI::Validator seconds();
/// Makes `o` a byte size: 4096, 512K, 64M, 1G, ... (CLI::AsSizeValue with
/// every unit a power of 1024: K = KB = KiB = 1024; no unit: bytes), at
/// least 1.
CLI::Option* size_option(CLI::Option* o);

/// The options several subcommands share. add_counters: --counters, a list
/// of counter names or 'all' (`scope` says which rows, e.g. "for --io cache").
CLI::Option* add_counters(CLI::App* app, std::vector<std::string>& counters,
                          std::string_view scope = "");
/// --threads: a list of thread counts and ranges up to `max` (default, when
/// `threads` stays empty: 1 to the usable CPUs; see threads_or_cpus()).
CLI::Option* add_threads(CLI::App* app, std::vector<std::string>& threads, unsigned max,
                         std::string_view what);
/// The counts of --threads, or 1 to the number of usable CPUs if not given.
std::vector<unsigned> threads_or_cpus(const std::vector<std::string>& threads);
/// --duration: seconds() each repeat of a point runs (its timed part).
CLI::Option* add_duration(CLI::App* app, double& duration);
/// --repeat: repeats per point, 1..1000.
CLI::Option* add_repeat(CLI::App* app, unsigned& repeat);
/// --dir: where the scratch files go (ScratchDir).
CLI::Option* add_dir(CLI::App* app, std::string& dir);
/// --json FILE and --csv FILE (Outputs).
void add_outputs(CLI::App* app, std::string& json, std::string& csv);

/// 1, 2, 4, ... up to and including `max` (max itself even if not a power).
std::vector<unsigned> powers_of_two_up_to(unsigned max);

// ---- PAYGO's slot modes (--slot-mode) ----------------------------------------

/// The names of paygo::SlotMode (paygo::to_string), in the enum's order:
/// "thread", "cpu", "spill".
const std::vector<std::string>& slot_mode_names();
/// --slot-mode into `modes` (its default: the library's, the name of
/// PaygoOptions{}.slot_mode): a list of slot_mode_names() or 'all', for the
/// paygo rows only. `scope` says which rows (e.g. " of --io cache").
CLI::Option* add_slot_modes(CLI::App* app, std::vector<std::string>& modes,
                            std::string_view scope = "");
/// The modes a --slot-mode list selects (selected(), then parse_slot_mode).
std::vector<SlotMode> selected_slot_modes(const std::vector<std::string>& given);
/// The modes' names (for the JSON config).
std::vector<std::string> names_of(const std::vector<SlotMode>& modes);
/// The slot modes counter C runs once each with: every one of `modes` for
/// PAYGO, one null (no mode, slot_mode null in its rows) for the others.
template <class C>
std::vector<std::optional<SlotMode>> slot_modes_of(const std::vector<SlotMode>& modes) {
  if constexpr (std::is_same_v<C, Paygo>) {
    return {modes.begin(), modes.end()};
  } else {
    return {std::nullopt};
  }
}
/// The row's slot_mode field: the mode's name, or null.
inline std::optional<std::string> slot_mode_field(std::optional<SlotMode> m) {
  if (!m) return std::nullopt;
  return std::string(to_string(*m));
}
/// " slot=<mode>" for a progress line, "" without a mode.
inline std::string slot_mode_label(std::optional<SlotMode> m) {
  return m ? fmt::format(" slot={}", to_string(*m)) : std::string();
}

// ---- counters -------------------------------------------------------------

template <class List>
struct CounterNames;
template <class... Cs>
struct CounterNames<CounterList<Cs...>> {
  static std::vector<std::string> get() { return {std::string(Cs::kName)...}; }
};

/// Names of every counter in paygo::baselines::AllCounters, in list order.
inline std::vector<std::string> all_counter_names() {
  return CounterNames<AllCounters>::get();
}

/// Calls f.template operator()<C>() for each counter of AllCounters whose
/// name is in `selected`, in list order (so baselines come first).
template <class F>
void for_each_selected(const std::vector<std::string>& selected, F&& f) {
  AllCounters::for_each([&]<class C>() {
    for (const auto& name : selected) {
      if (name == C::kName) {
        f.template operator()<C>();
        return;
      }
    }
  });
}

/// T with its own cache lines (nothing else shares the lines it writes).
template <class T>
struct alignas(kDestructiveInterference) Padded {
  template <class... A>
  explicit Padded(A&&... a) : value(std::forward<A>(a)...) {}
  T value;
};

// ---- threads --------------------------------------------------------------

/// CPUs this process may run on (sched_getaffinity), ascending.
const std::vector<int>& allowed_cpus();
/// Pins the calling thread to allowed_cpus()[i % size]. A failure is
/// reported once on stderr and otherwise ignored (the run goes on unpinned).
void pin_to_cpu_index(unsigned i);

/// What run_team() measured: operations summed over threads, and the time
/// from the common start to the stop signal.
struct TeamRun {
  std::uint64_t ops = 0;
  double seconds = 0;
  double ops_per_second() const { return seconds > 0 ? static_cast<double>(ops) / seconds : 0; }
};

/// Runs `threads` threads, thread i pinned to CPU index i (wrapping around).
/// Each calls warmup(i) (untimed: registration, first touch), then all start
/// together; each runs body(i, stop) -> ops until `stop` becomes true, which
/// happens `seconds` after the start. Exceptions from the threads are
/// rethrown here (the first one).
///
/// With more threads than CPUs the stop comes late: this thread must get a
/// CPU back from the busy team to set it (with 1000 threads on 2 CPUs,
/// typically 0.3 to 3 s after the asked `seconds`). TeamRun::seconds is
/// the real time from the start to the stop, so the rate stays right; only
/// the run takes longer.
///
/// before() and after() (the overload below) run on the calling thread:
/// before() once every warm-up is done and before the start, after() once
/// every thread has stopped and joined, so what happens between them is
/// exactly the timed reads (e.g. cache statistics deltas).
template <class Warmup, class Body, class Before, class After>
TeamRun run_team(unsigned threads, double seconds, Warmup&& warmup, Body&& body, Before&& before,
                 After&& after) {
  Padded<std::atomic<bool>> stop(false);
  Padded<std::atomic<std::uint64_t>> total(0);
  std::latch warmed(static_cast<std::ptrdiff_t>(threads));
  std::latch start(static_cast<std::ptrdiff_t>(threads) + 1);
  std::exception_ptr error;
  std::atomic<bool> failed{false};
  std::vector<std::jthread> team;
  team.reserve(threads);
  for (unsigned i = 0; i < threads; ++i) {
    team.emplace_back([&, i] {
      pin_to_cpu_index(i);
      try {
        warmup(i);
      } catch (...) {
        if (!failed.exchange(true, std::memory_order_acq_rel)) error = std::current_exception();
      }
      warmed.count_down();
      start.arrive_and_wait();
      if (failed.load(std::memory_order_acquire)) return;
      std::uint64_t n = 0;
      try {
        n = body(i, static_cast<const std::atomic<bool>&>(stop.value));
      } catch (...) {
        if (!failed.exchange(true, std::memory_order_acq_rel)) error = std::current_exception();
      }
      // Relaxed: join() below orders this before the read of the total.
      total.value.fetch_add(n, std::memory_order_relaxed);
    });
  }
  warmed.wait();
  // Acquire of the failed flag: a warm-up failure was published before its
  // count_down; before() is skipped then (the run is rethrown below).
  if (!failed.load(std::memory_order_acquire)) before();
  // The clock starts before the release: with more threads than CPUs the
  // workers may run for a long while before this thread gets a CPU back
  // (a clock read after arrive_and_wait() would miss their first reads
  // and overstate the rate).
  const auto t0 = std::chrono::steady_clock::now();
  start.count_down();
  std::this_thread::sleep_until(t0 + std::chrono::duration<double>(seconds));
  // Relaxed: workers only need to see it eventually; no data hangs on it.
  stop.value.store(true, std::memory_order_relaxed);
  const auto t1 = std::chrono::steady_clock::now();
  team.clear();  // joins
  if (error) std::rethrow_exception(error);
  after();
  return {total.value.load(std::memory_order_relaxed),
          std::chrono::duration<double>(t1 - t0).count()};
}

template <class Warmup, class Body>
TeamRun run_team(unsigned threads, double seconds, Warmup&& warmup, Body&& body) {
  return run_team(
      threads, seconds, std::forward<Warmup>(warmup), std::forward<Body>(body), [] {}, [] {});
}

// ---- results --------------------------------------------------------------

struct Stats {
  double median = 0;
  double min = 0;
  double max = 0;
};
/// Median (mean of the middle two for an even count), min and max.
Stats summarize(std::vector<double> samples);
/// The median of `samples`, or null if there are none.
std::optional<double> median_or_null(const std::vector<double>& samples);
/// `v` as JSON, null if it has no value.
template <class T>
nlohmann::json or_null(const std::optional<T>& v) {
  return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
}

/// One measured point; the fields are the JSON/CSV schema (bench/README.md).
struct Result {
  std::string experiment;  // the subcommand: "micro", "counting", "query", "rocksdb"
  std::string workload;
  std::string counter;
  std::optional<std::string> io;  // null where the experiment has no I/O mode
  unsigned threads = 0;
  std::optional<double> distributed_pct;  // null where not applicable
  Stats stats;
  std::string unit;  // "ops/s" (higher is better) or "s" (lower is better)
  // Self-tuning (bench/README.md): null where the row has no page cache or
  // no hint. Counts are medians over the repeats.
  std::optional<std::string> hint = std::nullopt;   // "auto", "hot", "central"
  std::optional<std::string> after = std::nullopt;  // query: the workload run before the drop
  std::optional<double> promotions = std::nullopt, demotions = std::nullopt;
  std::optional<double> distributed_pages = std::nullopt;    // at the end of the timed part
  std::optional<double> promoted_pages = std::nullopt;       // ... of which promoted (not hinted)
  std::optional<double> first_promotion_s = std::nullopt;    // first read (warm-up incl.) to it
  std::optional<double> promoted_read_share = std::nullopt;  // DRBZ: reads to promoted pages
  nlohmann::json phases = nullptr;  // PHASE: one object per phase; null elsewhere
  // The cache and the file of a `counting` row (bench/README.md): bytes the
  // cache holds (null for pread: the OS page cache) and the size of the file
  // read; per second over the timed part (medians of the repeats' rates):
  // hits, misses and evictions (null where the cache does not count them).
  std::optional<std::uint64_t> cache_bytes = std::nullopt, file_bytes = std::nullopt;
  std::optional<double> hits_per_s = std::nullopt, misses_per_s = std::nullopt;
  std::optional<double> evictions_per_s = std::nullopt;
  // query drop-under-misses: the missing readers' throughput while each
  // drop ran over their throughput just before it (median over the drops).
  std::optional<double> readers_during_drop = std::nullopt;
  // rocksdb: the keys the reads are restricted to (0: every key); null for
  // the other experiments.
  std::optional<std::uint64_t> hot_keys = std::nullopt;
  // micro and counting, PAYGO rows: its --slot-mode ("thread", "cpu",
  // "spill"); null for the other counters and experiments.
  std::optional<std::string> slot_mode = std::nullopt;
  // io=cache rows: the counter's table bytes at the end of the timed part
  // (CacheStats::counter_table_bytes; PAYGO: its per-thread and per-CPU
  // tables), median of the repeats; null elsewhere.
  std::optional<double> counter_table_bytes = std::nullopt;
};

/// What the page cache says about self-tuning after one repeat; folded
/// into a Result (medians over repeats) by set_tuning().
struct TuneSample {
  double promotions = 0, demotions = 0, distributed_pages = 0, promoted_pages = 0;
  double counter_table_bytes = 0;
  std::optional<double> first_promotion_s;
  std::optional<double> promoted_read_share;
};
/// tunes: the counter tunes itself (has tune_stats()); otherwise only
/// distributed_pages is set (the pages a Hot hint covers), the rest stays null.
void set_tuning(Result& r, const std::vector<TuneSample>& samples, bool tunes);
template <class C>
inline constexpr bool kTunes = requires(const C& c) {
  c.tune_stats();
};

nlohmann::json to_json(const Result& r);
/// The CSV header line and one row, same columns as the JSON objects.
std::string csv_header();
std::string csv_row(const Result& r);

/// The machine and build: cpu model, cores, kernel, compiler, git commit,
/// hostname, date, whether membarrier is in use. The one description of the
/// machine: every --json file's "machine", `paygo-bench machine` (make eval's
/// summary.txt, tools/scaling-sweep); kernel/parse_serial.py writes the same
/// fields for kernel-test, which has no paygo-bench (keep the two in step).
nlohmann::json machine_info();

/// Output files opened before the run (so a bad path fails before minutes
/// of measurement, with exit code 2) and written after it.
class Outputs {
 public:
  Outputs(const std::string& json_path, const std::string& csv_path);
  /// Writes {"machine", "config", "results"} and the CSV, where requested.
  void write(const nlohmann::json& config, const std::vector<Result>& results);
  /// The end of every subcommand: says on stderr which files were written
  /// and how many points failed; returns the exit code (0, or 1 on failures).
  int finish(unsigned failures) const;

 private:
  std::string json_path_, csv_path_;
  std::ofstream json_, csv_;
};

/// "123.4 M" / "1.23 us": a value in its unit, for humans.
std::string human(double value, std::string_view unit);
/// One table per workload on stdout: median, min, max, and median / median
/// of `noop`, of `atomic` and of `kernel` (the pread row) at the same
/// workload, thread count and distributed %; noop and atomic are taken with
/// the row's io where they have it, else with any io (io=cache). Columns
/// io, hint, slot (slot_mode) and dist% where some row has them.
void print_tables(const std::vector<Result>& results);

/// "[i/n] what: result" on stderr, one line per point.
class Progress {
 public:
  explicit Progress(std::size_t total) : total_(total) {}
  void report(std::string_view what, std::string_view result);

 private:
  std::size_t total_;
  std::size_t done_ = 0;
};

}  // namespace paygo::bench
