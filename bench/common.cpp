// bench/common.cpp — the shared harness: arguments, pinning, statistics,
// machine description, JSON/CSV output and tables.
#include "common.hpp"

#include <fmt/format.h>
#include <pthread.h>
#include <sched.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <ctime>
#include <map>
#include <mutex>
#include <numeric>

#include "git_rev.hpp"  // generated at build time: PAYGO_GIT_COMMIT, PAYGO_GIT_DIRTY
#include "paygo/fence.hpp"

namespace paygo::bench {

// ---- arguments ------------------------------------------------------------

CLI::Option* add_names(CLI::App* app, const std::string& flag, std::vector<std::string>& values,
                       std::vector<std::string> names, const std::string& help) {
  names.emplace_back("all");
  return add_list(app, flag, values, help)->check(CLI::IsMember(std::move(names)));
}

std::vector<std::string> selected(const std::vector<std::string>& given,
                                  const std::vector<std::string>& names, std::string_view flag) {
  require_distinct(given, flag);
  if (std::find(given.begin(), given.end(), "all") == given.end()) return given;
  if (given.size() != 1)
    throw UsageError(fmt::format("{}: 'all' stands alone, not in a list", flag));
  return names;
}

namespace {
/// "N" -> {N, N}, "N-M" -> {N, M} (decimal digits only); null otherwise.
std::optional<std::pair<unsigned, unsigned>> count_span(std::string_view item) {
  auto number = [](std::string_view s) -> std::optional<unsigned> {
    unsigned v = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
    return v;
  };
  const std::size_t dash = item.find('-');
  const auto lo = number(item.substr(0, dash));
  const auto hi = dash == std::string_view::npos ? lo : number(item.substr(dash + 1));
  if (!lo || !hi) return std::nullopt;
  return std::pair{*lo, *hi};
}
}  // namespace

CLI::Validator count_or_range(unsigned max) {
  return {[max](std::string& item) -> std::string {
            const auto span = count_span(item);
            if (!span) return fmt::format("'{}' is not a number or a range N-M", item);
            if (span->first == 0 || span->second > max) {
              return fmt::format("{} is out of range [1, {}]", item, max);
            }
            if (span->first > span->second) return fmt::format("empty range '{}'", item);
            return {};
          },
          fmt::format("N or N-M in [1 - {}]", max)};
}

std::vector<unsigned> expand_counts(const std::vector<std::string>& items) {
  std::vector<unsigned> out;
  for (const auto& item : items) {
    const auto span = count_span(item);  // checked by count_or_range()
    for (unsigned v = span->first; v <= span->second; ++v) out.push_back(v);
  }
  return out;
}

CLI::Validator seconds() {
  return {[](std::string& text) -> std::string {
            double s = 0;
            if (!CLI::detail::lexical_cast(text, s) || !std::isfinite(s) || s <= 0) {
              return fmt::format("must be a positive number of seconds, got {}", text);
            }
            if (s > 3600) return fmt::format("{} s is more than an hour", text);
            return {};
          },
          "SECONDS in (0 - 3600]"};
}

CLI::Option* size_option(CLI::Option* o) {
  // At most 2^60 (an exbibyte, AsSizeValue's largest unit): this also refuses
  // "-1", which the conversion to uint64 reads as 2^64 - 1.
  return o->transform(CLI::AsSizeValue(false))
      ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1} << 60))
      ->option_text("SIZE");
}

CLI::Option* add_counters(CLI::App* app, std::vector<std::string>& counters,
                          std::string_view scope) {
  return add_names(app, "--counters", counters, all_counter_names(),
                   fmt::format("Comma-separated counter names{}, or 'all'", scope));
}

CLI::Option* add_threads(CLI::App* app, std::vector<std::string>& threads, unsigned max,
                         std::string_view what) {
  return add_list(app, "--threads", threads,
                  fmt::format("Thread counts{}: comma-separated, ranges allowed (1,2,4 or 1-8); "
                              "may exceed the CPUs (threads wrap around). Default: 1 to the "
                              "number of usable CPUs (here 1-{})",
                              what, allowed_cpus().size()))
      ->check(count_or_range(max));
}

std::vector<unsigned> threads_or_cpus(const std::vector<std::string>& threads) {
  if (!threads.empty()) return expand_counts(threads);
  std::vector<unsigned> all(allowed_cpus().size());
  std::iota(all.begin(), all.end(), 1U);
  return all;
}

CLI::Option* add_duration(CLI::App* app, double& duration) {
  return app
      ->add_option("--duration", duration,
                   "Seconds each repeat of each point runs (timed part only), > 0")
      ->check(seconds())
      ->capture_default_str();
}

CLI::Option* add_repeat(CLI::App* app, unsigned& repeat) {
  return app->add_option("--repeat", repeat, "Repeats per point (median/min/max of them), 1..1000")
      ->check(CLI::Range(1U, 1000U))
      ->capture_default_str();
}

CLI::Option* add_dir(CLI::App* app, std::string& dir) {
  return app
      ->add_option("--dir", dir,
                   "Where to create the scratch files (removed at exit). Default: $TMPDIR or /tmp")
      ->option_text("DIR");
}

void add_outputs(CLI::App* app, std::string& json, std::string& csv) {
  app->add_option(
         "--json", json,
         "Write {machine, config, results} as JSON to FILE (bench/README.md). Default: none")
      ->option_text("FILE");
  app->add_option("--csv", csv, "Write the results as CSV to FILE. Default: none")
      ->option_text("FILE");
}

std::vector<unsigned> powers_of_two_up_to(unsigned max) {
  std::vector<unsigned> out;
  for (unsigned v = 1; v < max; v *= 2) out.push_back(v);
  out.push_back(max);
  return out;
}

// ---- PAYGO's slot modes ------------------------------------------------------

const std::vector<std::string>& slot_mode_names() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> v;
    for (SlotMode m : {SlotMode::Thread, SlotMode::Cpu, SlotMode::Spill}) {
      v.emplace_back(to_string(m));
    }
    return v;
  }();
  return names;
}

CLI::Option* add_slot_modes(CLI::App* app, std::vector<std::string>& modes,
                            std::string_view scope) {
  const PaygoOptions defaults;
  const std::string def(to_string(defaults.slot_mode));
  if (modes.empty()) modes = {def};
  return add_names(
      app, "--slot-mode,--slot-modes", modes, slot_mode_names(),
      fmt::format("PAYGO rows{} only: comma-separated slot modes (PaygoOptions::slot_mode: where a "
                  "distributed get counts), or 'all'; each PAYGO row runs once per mode (row field "
                  "slot_mode), the other counters run once (slot_mode null). thread: a table per "
                  "thread (a Domain slot; threads beyond max_slots, {} by default, count on the "
                  "object's central word); cpu: a table per CPU, shared by the threads that run "
                  "there (an atomic RMW per get and per put; memory and query cost grow with CPUs, "
                  "not threads); spill: per-thread tables while the max_slots slots last, per-CPU "
                  "tables for the threads beyond. Default: {} (the library's)",
                  scope, defaults.max_slots, def));
}

std::vector<SlotMode> selected_slot_modes(const std::vector<std::string>& given) {
  std::vector<SlotMode> out;
  for (const auto& name : selected(given, slot_mode_names(), "--slot-mode")) {
    SlotMode m{};
    // Checked by add_slot_modes()'s IsMember; a name the library dropped
    // would still be refused here.
    if (!parse_slot_mode(name, m)) {
      throw UsageError(fmt::format("--slot-mode: unknown slot mode '{}'", name));
    }
    out.push_back(m);
  }
  return out;
}

std::vector<std::string> names_of(const std::vector<SlotMode>& modes) {
  std::vector<std::string> out;
  for (SlotMode m : modes) out.emplace_back(to_string(m));
  return out;
}

// ---- threads --------------------------------------------------------------

const std::vector<int>& allowed_cpus() {
  static const std::vector<int> cpus = [] {
    std::vector<int> v;
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) == 0) {
      for (int c = 0; c < CPU_SETSIZE; ++c) {
        if (CPU_ISSET(c, &set)) v.push_back(c);
      }
    }
    if (v.empty()) {
      const unsigned n = std::max(1u, std::thread::hardware_concurrency());
      for (unsigned c = 0; c < n; ++c) v.push_back(static_cast<int>(c));
    }
    return v;
  }();
  return cpus;
}

void pin_to_cpu_index(unsigned i) {
  const auto& cpus = allowed_cpus();
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpus[i % cpus.size()], &set);
  if (const int rc = pthread_setaffinity_np(pthread_self(), sizeof(set), &set); rc != 0) {
    static std::once_flag warned;
    std::call_once(warned, [rc] {
      fmt::print(stderr, "paygo-bench: warning: cannot pin threads (error {}); running unpinned\n",
                 rc);
    });
  }
}

// ---- results --------------------------------------------------------------

Stats summarize(std::vector<double> samples) {
  if (samples.empty()) return {};
  std::sort(samples.begin(), samples.end());
  const std::size_t n = samples.size();
  const double median = n % 2 == 1 ? samples[n / 2] : (samples[n / 2 - 1] + samples[n / 2]) / 2.0;
  return {median, samples.front(), samples.back()};
}

std::optional<double> median_or_null(const std::vector<double>& samples) {
  if (samples.empty()) return std::nullopt;
  return summarize(samples).median;
}

nlohmann::json to_json(const Result& r) {
  nlohmann::json j;
  j["experiment"] = r.experiment;
  j["workload"] = r.workload;
  j["counter"] = r.counter;
  j["io"] = or_null(r.io);
  j["threads"] = r.threads;
  j["distributed_pct"] = or_null(r.distributed_pct);
  j["median"] = r.stats.median;
  j["min"] = r.stats.min;
  j["max"] = r.stats.max;
  j["unit"] = r.unit;
  j["hint"] = or_null(r.hint);
  j["after"] = or_null(r.after);
  j["promotions"] = or_null(r.promotions);
  j["demotions"] = or_null(r.demotions);
  j["distributed_pages"] = or_null(r.distributed_pages);
  j["promoted_pages"] = or_null(r.promoted_pages);
  j["counter_table_bytes"] = or_null(r.counter_table_bytes);
  j["first_promotion_s"] = or_null(r.first_promotion_s);
  j["promoted_read_share"] = or_null(r.promoted_read_share);
  j["phases"] = r.phases;
  j["cache_bytes"] = or_null(r.cache_bytes);
  j["file_bytes"] = or_null(r.file_bytes);
  j["hits"] = or_null(r.hits_per_s);
  j["misses"] = or_null(r.misses_per_s);
  j["evictions"] = or_null(r.evictions_per_s);
  j["readers_during_drop"] = or_null(r.readers_during_drop);
  j["hot_keys"] = or_null(r.hot_keys);
  j["slot_mode"] = or_null(r.slot_mode);
  return j;
}

void set_tuning(Result& r, const std::vector<TuneSample>& samples, bool tunes) {
  if (samples.empty()) return;
  // The median over the repeats that have the field (every repeat has the
  // counts; one without a promotion has no first_promotion_s); null if none.
  auto median = [&](auto field) {
    std::vector<double> v;
    for (const auto& s : samples) {
      if (const std::optional<double> x = field(s)) v.push_back(*x);
    }
    return median_or_null(v);
  };
  r.distributed_pages = median([](const TuneSample& s) { return s.distributed_pages; });
  r.counter_table_bytes = median([](const TuneSample& s) { return s.counter_table_bytes; });
  if (!tunes) return;
  r.promotions = median([](const TuneSample& s) { return s.promotions; });
  r.demotions = median([](const TuneSample& s) { return s.demotions; });
  r.promoted_pages = median([](const TuneSample& s) { return s.promoted_pages; });
  r.first_promotion_s = median([](const TuneSample& s) { return s.first_promotion_s; });
  r.promoted_read_share = median([](const TuneSample& s) { return s.promoted_read_share; });
}

namespace {
std::string csv_field(std::string_view s) {
  if (s.find_first_of(",\"\n") == std::string_view::npos) return std::string(s);
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + '"';
}
}  // namespace

// The CSV columns, in order: every field of to_json() but `phases` (a list
// per row, JSON only).
constexpr std::array kColumns = {
    // every row has these
    "experiment", "workload", "counter", "io", "threads", "distributed_pct", "median", "min", "max",
    "unit",
    // self-tuning
    "hint", "after", "promotions", "demotions", "distributed_pages", "promoted_pages",
    "first_promotion_s", "promoted_read_share",
    // the cache's sizes and rates (counting); query drop-under-misses
    "cache_bytes", "file_bytes", "hits", "misses", "evictions", "readers_during_drop",
    // rocksdb
    "hot_keys",
    // micro and counting: PAYGO's slot mode
    "slot_mode",
    // counting, io=cache: the counter's table bytes
    "counter_table_bytes"};

std::string csv_header() {
  return fmt::format("{}", fmt::join(kColumns, ","));
}

std::string csv_row(const Result& r) {
  // The JSON fields, so both files say the same: null is an empty field,
  // integers as they are, other numbers with 9 significant digits.
  const nlohmann::json j = to_json(r);
  std::vector<std::string> fields;
  for (const char* column : kColumns) {
    const nlohmann::json& v = j.at(column);
    fields.push_back(v.is_null()           ? std::string()
                     : v.is_string()       ? csv_field(v.get<std::string>())
                     : v.is_number_float() ? fmt::format("{:.9g}", v.get<double>())
                                           : v.dump());
  }
  return fmt::format("{}", fmt::join(fields, ","));
}

namespace {
std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    // x86: "model name"; arm64: no model name, but "CPU part"/"Hardware".
    for (std::string_view key : {"model name", "Hardware", "cpu model", "Processor"}) {
      if (line.rfind(key, 0) == 0) {
        const std::size_t colon = line.find(':');
        if (colon != std::string::npos) return std::string(trim(line.substr(colon + 1)));
      }
    }
  }
  return "unknown";
}

std::string compiler() {
#if defined(__clang__)
  return fmt::format("clang {}.{}.{}", __clang_major__, __clang_minor__, __clang_patchlevel__);
#elif defined(__GNUC__)
  return fmt::format("gcc {}.{}.{}", __GNUC__, __GNUC_MINOR__, __GNUC_PATCHLEVEL__);
#else
  return "unknown";
#endif
}

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::array<char, 32> buf{};
  std::strftime(buf.data(), buf.size(), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf.data();
}
}  // namespace

nlohmann::json machine_info() {
  nlohmann::json m;
  m["cpu_model"] = cpu_model();
  m["cores"] = std::thread::hardware_concurrency();
  m["cpus_allowed"] = allowed_cpus().size();
  utsname u{};
  if (uname(&u) == 0) {
    m["kernel"] = fmt::format("{} {}", u.sysname, u.release);
    m["arch"] = u.machine;
  } else {
    m["kernel"] = "unknown";
    m["arch"] = "unknown";
  }
  m["compiler"] = compiler();
  m["build_type"] = PAYGO_BUILD_TYPE;
  m["git_commit"] = PAYGO_GIT_COMMIT;
  m["git_dirty"] = PAYGO_GIT_DIRTY != 0;
  std::array<char, 256> host{};
  m["hostname"] = gethostname(host.data(), host.size() - 1) == 0 ? host.data() : "unknown";
  m["date"] = utc_now();
  init_asymmetric_fences();  // the first Domain would do it; we want the answer now
  m["membarrier"] = membarrier_in_use();
  return m;
}

Outputs::Outputs(const std::string& json_path, const std::string& csv_path)
    : json_path_(json_path), csv_path_(csv_path) {
  if (!json_path_.empty()) {
    json_.open(json_path_);
    if (!json_) throw UsageError(fmt::format("--json: cannot write '{}'", json_path_));
  }
  if (!csv_path_.empty()) {
    csv_.open(csv_path_);
    if (!csv_) throw UsageError(fmt::format("--csv: cannot write '{}'", csv_path_));
  }
}

int Outputs::finish(unsigned failures) const {
  if (!json_path_.empty()) fmt::print(stderr, "wrote {}\n", json_path_);
  if (!csv_path_.empty()) fmt::print(stderr, "wrote {}\n", csv_path_);
  if (failures == 0) return 0;
  fmt::print(stderr, "paygo-bench: {} point(s) failed (see above)\n", failures);
  return 1;
}

void Outputs::write(const nlohmann::json& config, const std::vector<Result>& results) {
  if (json_.is_open()) {
    nlohmann::json doc;
    doc["machine"] = machine_info();
    doc["config"] = config;
    doc["results"] = nlohmann::json::array();
    for (const auto& r : results) doc["results"].push_back(to_json(r));
    json_ << doc.dump(2) << '\n';
    json_.close();
    if (json_.fail()) throw std::runtime_error(fmt::format("writing '{}' failed", json_path_));
  }
  if (csv_.is_open()) {
    csv_ << csv_header() << '\n';
    for (const auto& r : results) csv_ << csv_row(r) << '\n';
    csv_.close();
    if (csv_.fail()) throw std::runtime_error(fmt::format("writing '{}' failed", csv_path_));
  }
}

std::string human(double value, std::string_view unit) {
  if (unit == "s") {
    if (value >= 1) return fmt::format("{:.3g} s", value);
    if (value >= 1e-3) return fmt::format("{:.3g} ms", value * 1e3);
    if (value >= 1e-6) return fmt::format("{:.3g} us", value * 1e6);
    return fmt::format("{:.3g} ns", value * 1e9);
  }
  if (value >= 1e9) return fmt::format("{:.3g} G", value / 1e9);
  if (value >= 1e6) return fmt::format("{:.3g} M", value / 1e6);
  if (value >= 1e3) return fmt::format("{:.3g} k", value / 1e3);
  return fmt::format("{:.3g}", value);
}

void print_tables(const std::vector<Result>& results) {
  // Workloads in order of first appearance; rows keep the measured order.
  std::vector<std::pair<std::string, std::string>> workloads;  // (experiment, workload)
  for (const auto& r : results) {
    const std::pair key{r.experiment, r.workload};
    if (std::find(workloads.begin(), workloads.end(), key) == workloads.end()) {
      workloads.push_back(key);
    }
  }
  for (const auto& [experiment, workload] : workloads) {
    std::vector<const Result*> rows;
    for (const auto& r : results) {
      if (r.experiment == experiment && r.workload == workload) rows.push_back(&r);
    }
    // Grouped by (distributed %, threads); measured order within a group
    // (counting: the cache counters, then pread, then the RocksDB caches).
    std::stable_sort(rows.begin(), rows.end(), [](const Result* a, const Result* b) {
      return std::tie(a->distributed_pct, a->threads) < std::tie(b->distributed_pct, b->threads);
    });
    const std::string unit = rows.front()->unit;
    // The row of counter `name` at r's threads and distributed %: with r's io
    // if there is one, else with any io (counting has noop and atomic only
    // on io=cache, and `kernel` only on io=pread).
    auto baseline = [&](const Result& r, std::string_view name) -> std::string {
      const Result* found = nullptr;
      for (const Result* b : rows) {
        if (b->counter == name && b->threads == r.threads &&
            b->distributed_pct == r.distributed_pct && (found == nullptr || b->io == r.io)) {
          found = b;
          if (b->io == r.io) break;
        }
      }
      if (found == nullptr || !(found->stats.median > 0)) return "-";
      return fmt::format("{:.3f}", r.stats.median / found->stats.median);
    };
    fmt::print(
        "\n{} / {}  (unit {}{}; ratios = median / median of noop, atomic, kernel (the pread row) "
        "at the same threads; noop and atomic with the same io, else io=cache)\n",
        experiment, workload, unit, unit == "s" ? ", lower is better" : ", higher is better");
    // io and distributed_pct get a column only where some row has them.
    const bool has_io = std::any_of(rows.begin(), rows.end(), [](auto* r) { return r->io; });
    const bool has_pct =
        std::any_of(rows.begin(), rows.end(), [](auto* r) { return r->distributed_pct; });
    const bool has_hint = std::any_of(rows.begin(), rows.end(), [](auto* r) { return r->hint; });
    const bool has_slot =
        std::any_of(rows.begin(), rows.end(), [](auto* r) { return r->slot_mode; });
    auto extra = [&](const Result* r) {
      std::string s;
      if (has_io) s += fmt::format("{:<13} ", r == nullptr ? "io" : r->io.value_or("-"));
      if (has_hint) s += fmt::format("{:<8} ", r == nullptr ? "hint" : r->hint.value_or("-"));
      if (has_slot) s += fmt::format("{:<6} ", r == nullptr ? "slot" : r->slot_mode.value_or("-"));
      if (has_pct) {
        s += fmt::format("{:>6} ", r == nullptr         ? "dist%"
                                   : r->distributed_pct ? fmt::format("{:g}", *r->distributed_pct)
                                                        : "-");
      }
      return s;
    };
    // Self-tuning columns where some row has a hint: the ratio to the same
    // counter's hint=hot row (with the same slot mode), promotions and pages
    // distributed at the end.
    auto hinted = [&](const Result& r) -> std::string {
      if (!r.hint || *r.hint == "hot") return "-";
      for (const Result* b : rows) {
        if (b->counter == r.counter && b->threads == r.threads && b->io == r.io &&
            b->distributed_pct == r.distributed_pct && b->slot_mode == r.slot_mode &&
            b->hint == "hot" && b->stats.median > 0)
          return fmt::format("{:.3f}", r.stats.median / b->stats.median);
      }
      return "-";
    };
    auto tuning = [&](const Result* r) -> std::string {
      if (!has_hint) return "";
      if (r == nullptr) return fmt::format(" {:>8} {:>7} {:>7}", "/hot", "promo", "dist");
      auto n = [](const std::optional<double>& v) {
        return v ? fmt::format("{:g}", *v) : std::string("-");
      };
      return fmt::format(" {:>8} {:>7} {:>7}", hinted(*r), n(r->promotions),
                         n(r->distributed_pages));
    };
    // A last column, misses per second, where some row missed (RRND, or
    // DRBZ over a cache smaller than its file).
    const bool has_miss = std::any_of(
        rows.begin(), rows.end(), [](auto* r) { return r->misses_per_s && *r->misses_per_s > 0; });
    auto misses = [&](const Result* r) -> std::string {
      if (!has_miss) return "";
      if (r == nullptr) return fmt::format(" {:>10}", "miss/s");
      // One token (no space before the unit), so the column splits cleanly.
      std::string v = r->misses_per_s ? human(*r->misses_per_s, "ops/s") : std::string("-");
      v.erase(std::remove(v.begin(), v.end(), ' '), v.end());
      return fmt::format(" {:>10}", v);
    };
    fmt::print("{}{:>7}  {:<14} {:>10} {:>10} {:>10} {:>8} {:>8} {:>8}{}{}\n", extra(nullptr),
               "threads", "counter", "median", "min", "max", "/noop", "/atomic", "/pread",
               tuning(nullptr), misses(nullptr));
    for (const Result* r : rows) {
      fmt::print("{}{:>7}  {:<14} {:>10} {:>10} {:>10} {:>8} {:>8} {:>8}{}{}\n", extra(r),
                 r->threads, r->counter, human(r->stats.median, unit), human(r->stats.min, unit),
                 human(r->stats.max, unit), baseline(*r, "noop"), baseline(*r, "atomic"),
                 baseline(*r, "kernel"), tuning(r), misses(r));
    }
  }
  std::fflush(stdout);
}

void Progress::report(std::string_view what, std::string_view result) {
  ++done_;
  fmt::print(stderr, "[{}/{}] {}: {}\n", done_, total_, what, result);
  std::fflush(stderr);
}

}  // namespace paygo::bench
