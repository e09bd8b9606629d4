// bench/common.cpp — the shared harness: arguments, pinning, statistics,
// machine description, JSON/CSV output and tables.
#include "common.hpp"

#include <fmt/core.h>
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
#include <sstream>

#include "git_rev.hpp"  // generated at build time: PAYGO_GIT_COMMIT, PAYGO_GIT_DIRTY
#include "paygo/fence.hpp"

namespace paygo::bench {

// ---- arguments ------------------------------------------------------------

namespace {
std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::vector<std::string_view> split(std::string_view text, char sep) {
  std::vector<std::string_view> parts;
  std::size_t pos = 0;
  while (true) {
    const std::size_t next = text.find(sep, pos);
    parts.push_back(trim(text.substr(pos, next - pos)));
    if (next == std::string_view::npos) break;
    pos = next + 1;
  }
  return parts;
}

unsigned parse_count(std::string_view s, std::string_view flag, unsigned max) {
  unsigned long v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || end != s.data() + s.size()) {
    throw UsageError(fmt::format("{}: '{}' is not a number", flag, s));
  }
  if (v == 0 || v > max) {
    throw UsageError(fmt::format("{}: {} is out of range [1, {}]", flag, v, max));
  }
  return static_cast<unsigned>(v);
}
}  // namespace

std::vector<unsigned> parse_count_list(std::string_view text, std::string_view flag, unsigned max) {
  if (trim(text).empty()) throw UsageError(fmt::format("{}: the list is empty", flag));
  std::vector<unsigned> out;
  for (std::string_view part : split(text, ',')) {
    if (part.empty()) throw UsageError(fmt::format("{}: empty item in '{}'", flag, text));
    if (const std::size_t dash = part.find('-'); dash != std::string_view::npos) {
      const unsigned lo = parse_count(trim(part.substr(0, dash)), flag, max);
      const unsigned hi = parse_count(trim(part.substr(dash + 1)), flag, max);
      if (lo > hi) throw UsageError(fmt::format("{}: empty range '{}'", flag, part));
      for (unsigned v = lo; v <= hi; ++v) out.push_back(v);
    } else {
      out.push_back(parse_count(part, flag, max));
    }
  }
  return out;
}

std::vector<std::string> parse_name_list(std::string_view text, std::string_view flag,
                                         const std::vector<std::string>& allowed) {
  if (trim(text).empty()) throw UsageError(fmt::format("{}: the list is empty", flag));
  if (trim(text) == "all") return allowed;
  std::vector<std::string> out;
  for (std::string_view part : split(text, ',')) {
    if (std::find(allowed.begin(), allowed.end(), part) == allowed.end()) {
      throw UsageError(
          fmt::format("{}: unknown name '{}' (known: {})", flag, part, join(allowed, ", ")));
    }
    if (std::find(out.begin(), out.end(), part) != out.end()) {
      throw UsageError(fmt::format("{}: '{}' given twice", flag, part));
    }
    out.emplace_back(part);
  }
  return out;
}

double check_duration(double seconds, std::string_view flag) {
  if (!std::isfinite(seconds) || seconds <= 0) {
    throw UsageError(
        fmt::format("{}: must be a positive number of seconds, got {}", flag, seconds));
  }
  if (seconds > 3600) throw UsageError(fmt::format("{}: {} s is more than an hour", flag, seconds));
  return seconds;
}

std::string join(const std::vector<std::string>& items, std::string_view sep) {
  std::string out;
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i != 0) out += sep;
    out += items[i];
  }
  return out;
}

std::string join(const std::vector<unsigned>& items, std::string_view sep) {
  std::string out;
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i != 0) out += sep;
    out += std::to_string(items[i]);
  }
  return out;
}

std::vector<unsigned> powers_of_two_up_to(unsigned max) {
  std::vector<unsigned> out;
  for (unsigned v = 1; v < max; v *= 2) out.push_back(v);
  out.push_back(max);
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

nlohmann::json to_json(const Result& r) {
  nlohmann::json j;
  j["experiment"] = r.experiment;
  j["workload"] = r.workload;
  j["counter"] = r.counter;
  j["io"] = r.io ? nlohmann::json(*r.io) : nlohmann::json(nullptr);
  j["threads"] = r.threads;
  j["distributed_pct"] =
      r.distributed_pct ? nlohmann::json(*r.distributed_pct) : nlohmann::json(nullptr);
  j["median"] = r.stats.median;
  j["min"] = r.stats.min;
  j["max"] = r.stats.max;
  j["unit"] = r.unit;
  auto opt = [](const auto& v) { return v ? nlohmann::json(*v) : nlohmann::json(nullptr); };
  j["hint"] = opt(r.hint);
  j["after"] = opt(r.after);
  j["promotions"] = opt(r.promotions);
  j["demotions"] = opt(r.demotions);
  j["distributed_pages"] = opt(r.distributed_pages);
  j["promoted_pages"] = opt(r.promoted_pages);
  j["first_promotion_s"] = opt(r.first_promotion_s);
  j["promoted_read_share"] = opt(r.promoted_read_share);
  j["phases"] = r.phases;
  j["cache_bytes"] = opt(r.cache_bytes);
  j["file_bytes"] = opt(r.file_bytes);
  j["hits"] = opt(r.hits_per_s);
  j["misses"] = opt(r.misses_per_s);
  j["evictions"] = opt(r.evictions_per_s);
  j["readers_during_drop"] = opt(r.readers_during_drop);
  return j;
}

void set_tuning(Result& r, const std::vector<TuneSample>& samples, bool tunes) {
  if (samples.empty()) return;
  auto median_of = [&](auto field) {
    std::vector<double> v;
    for (const auto& s : samples) v.push_back(field(s));
    return summarize(v).median;
  };
  r.distributed_pages = median_of([](const TuneSample& s) { return s.distributed_pages; });
  if (!tunes) return;
  r.promotions = median_of([](const TuneSample& s) { return s.promotions; });
  r.demotions = median_of([](const TuneSample& s) { return s.demotions; });
  r.promoted_pages = median_of([](const TuneSample& s) { return s.promoted_pages; });
  // Medians of the repeats that have a value (a repeat without a promotion
  // has no first_promotion_s); null if none has.
  auto median_present = [&](auto field) -> std::optional<double> {
    std::vector<double> v;
    for (const auto& s : samples)
      if (auto x = field(s)) v.push_back(*x);
    if (v.empty()) return std::nullopt;
    return summarize(v).median;
  };
  r.first_promotion_s = median_present([](const TuneSample& s) { return s.first_promotion_s; });
  r.promoted_read_share = median_present([](const TuneSample& s) { return s.promoted_read_share; });
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

std::string csv_header() {
  return "experiment,workload,counter,io,threads,distributed_pct,median,min,max,unit,"
         "hint,after,promotions,demotions,distributed_pages,promoted_pages,"
         "first_promotion_s,promoted_read_share,"
         "cache_bytes,file_bytes,hits,misses,evictions,readers_during_drop";
}

std::string csv_row(const Result& r) {
  auto num = [](const std::optional<double>& v) {
    return v ? fmt::format("{:.9g}", *v) : std::string();
  };
  auto count = [](const std::optional<std::uint64_t>& v) {
    return v ? std::to_string(*v) : std::string();
  };
  return fmt::format(
      "{},{},{},{},{},{},{:.9g},{:.9g},{:.9g},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
      csv_field(r.experiment), csv_field(r.workload), csv_field(r.counter),
      r.io ? csv_field(*r.io) : std::string(), r.threads,
      r.distributed_pct ? fmt::format("{:g}", *r.distributed_pct) : std::string(), r.stats.median,
      r.stats.min, r.stats.max, csv_field(r.unit), r.hint ? csv_field(*r.hint) : std::string(),
      r.after ? csv_field(*r.after) : std::string(), num(r.promotions), num(r.demotions),
      num(r.distributed_pages), num(r.promoted_pages), num(r.first_promotion_s),
      num(r.promoted_read_share), count(r.cache_bytes), count(r.file_bytes), num(r.hits_per_s),
      num(r.misses_per_s), num(r.evictions_per_s), num(r.readers_during_drop));
}

namespace {
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
    auto extra = [&](const Result* r) {
      std::string s;
      if (has_io) s += fmt::format("{:<12} ", r == nullptr ? "io" : r->io.value_or("-"));
      if (has_hint) s += fmt::format("{:<8} ", r == nullptr ? "hint" : r->hint.value_or("-"));
      if (has_pct) {
        s += fmt::format("{:>6} ", r == nullptr         ? "dist%"
                                   : r->distributed_pct ? fmt::format("{:g}", *r->distributed_pct)
                                                        : "-");
      }
      return s;
    };
    // Self-tuning columns where some row has a hint: the ratio to the same
    // counter's hint=hot row, promotions and pages distributed at the end.
    auto hinted = [&](const Result& r) -> std::string {
      if (!r.hint || *r.hint == "hot") return "-";
      for (const Result* b : rows) {
        if (b->counter == r.counter && b->threads == r.threads && b->io == r.io &&
            b->distributed_pct == r.distributed_pct && b->hint == "hot" && b->stats.median > 0)
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
