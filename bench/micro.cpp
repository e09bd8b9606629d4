// bench/micro.cpp — `paygo-bench micro`: the counters on their own.
//
//   hot     T pinned threads loop { tok = get(obj); tok.reset(); } on one
//           shared object marked distributed; ops/s summed over threads.
//   single  the same with one thread (the uncontended fast path), ops/s.
//   query   seconds per try_freeze + query + unfreeze from the main thread,
//           on an object that S threads have each taken and released one
//           distributed reference to (so S slots hold state for it).
//
// Every point is measured --repeat times, each with a fresh counter and
// object; the median, min and max are reported. PAYGO runs once per
// --slot-mode (PaygoOptions::slot_mode; its other options the library's,
// max_slots included), the other counters once.
#include <fmt/core.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <thread>
#include <type_traits>
#include <vector>

#include "commands.hpp"
#include "common.hpp"
#include "paygo/detail/wake.hpp"

namespace paygo::bench {
namespace {

using Clock = std::chrono::steady_clock;

const std::vector<std::string> kWorkloads = {"hot", "single", "query"};

struct MicroOptions {
  std::vector<std::string> counters = {"all"};
  std::vector<std::string> threads;  // empty: 1..number of usable CPUs
  std::vector<std::string> workloads = kWorkloads;
  std::vector<std::string> slot_modes;  // add_slot_modes(): the library's default
  double duration = 0.3;
  unsigned repeat = 3;
  unsigned max_slots = 64;
  std::string json;
  std::string csv;
};

/// get/put pairs per check of the stop flag (keeps the flag load off the
/// per-operation cost without letting a thread overrun the stop by much).
constexpr unsigned kOpsPerCheck = 32;
/// freeze/query/unfreeze rounds per clock read in `query`.
constexpr unsigned kQueriesPerCheck = 8;

/// A fresh counter: PAYGO with the library's options (max_slots
/// PaygoOptions{}.max_slots) but slot mode `slot`, the others
/// default-constructed (`slot` is null for them).
template <class C>
std::unique_ptr<C> make_counter(std::optional<SlotMode> slot) {
  if constexpr (std::is_same_v<C, Paygo>) {
    PaygoOptions po;
    if (slot) po.slot_mode = *slot;
    return std::make_unique<C>(po);
  } else {
    return std::make_unique<C>();
  }
}

/// A fresh counter and one object of it marked distributed, on the heap
/// (a counter may be large) and on cache lines of their own.
template <class C>
struct HotObject {
  explicit HotObject(std::optional<SlotMode> slot)
      : counter(make_counter<C>(slot)),
        object(std::make_unique<Padded<typename C::Object>>(*counter)) {
    counter->set_distributed(object->value, true);
  }
  std::unique_ptr<C> counter;
  std::unique_ptr<Padded<typename C::Object>> object;
};

template <class C>
double hot_once(unsigned threads, double seconds, std::optional<SlotMode> slot) {
  HotObject<C> hot(slot);
  C& c = *hot.counter;
  typename C::Object& o = hot.object->value;
  Padded<std::atomic<std::uint64_t>> failed(0);
  const TeamRun run = run_team(
      threads, seconds,
      [&](unsigned) {
        // Untimed first touch: slot registration, table allocation.
        typename C::Token t = c.get(o);
        t.reset();
      },
      [&](unsigned, const std::atomic<bool>& stop) -> std::uint64_t {
        std::uint64_t n = 0;
        std::uint64_t fails = 0;
        // Relaxed: the flag carries no data, only "stop soon".
        while (!stop.load(std::memory_order_relaxed)) {
          for (unsigned k = 0; k < kOpsPerCheck; ++k) {
            typename C::Token t = c.get(o);
            fails += t ? 0 : 1;
            t.reset();
          }
          n += kOpsPerCheck;
        }
        // Relaxed: read after join().
        if (fails != 0) failed.value.fetch_add(fails, std::memory_order_relaxed);
        return n;
      });
  if (const auto f = failed.value.load(std::memory_order_relaxed); f != 0) {
    throw PointFailed(fmt::format("{} of {} gets failed on a live object", f, run.ops));
  }
  return run.ops_per_second();
}

/// try_freeze, retrying for up to a second: nobody holds a reference, so a
/// counter that still refuses is broken (or needs a flush we cannot give).
template <class C>
void freeze_or_fail(C& c, typename C::Object& o) {
  if (c.try_freeze(o)) [[likely]]
    return;
  const auto give_up = Clock::now() + std::chrono::seconds(1);
  while (!c.try_freeze(o)) {
    if (Clock::now() > give_up) {
      throw PointFailed("try_freeze refused for 1 s with no reference held");
    }
    std::this_thread::yield();
  }
}

template <class C>
double query_once(unsigned slots, double seconds, std::optional<SlotMode> slot) {
  HotObject<C> hot(slot);
  C& c = *hot.counter;
  typename C::Object& o = hot.object->value;

  // S helpers, all alive at once (so each owns its own slot), each take and
  // release one distributed reference, then sleep until the timing is done.
  std::latch touched(static_cast<std::ptrdiff_t>(slots));
  std::atomic<bool> done{false};
  std::atomic<unsigned> get_failures{0};
  std::vector<std::jthread> helpers;
  helpers.reserve(slots);
  for (unsigned i = 0; i < slots; ++i) {
    helpers.emplace_back([&, i] {
      pin_to_cpu_index(i);
      {
        typename C::Token t = c.get(o);
        // Relaxed: read after touched.wait(), which orders it.
        if (!t) get_failures.fetch_add(1, std::memory_order_relaxed);
      }
      touched.count_down();
      // Acquire: pairs with the release store below (nothing to hand over,
      // but it keeps the helper alive, owning its slot, until the end).
      done.wait(false, std::memory_order_acquire);
    });
  }
  touched.wait();
  auto finish = [&] {
    detail::store_and_wake_all(done, true);  // release: pairs with the helpers' acquire wait
    helpers.clear();                         // joins
  };
  if (get_failures.load(std::memory_order_relaxed) != 0) {
    finish();
    throw PointFailed("a helper's get failed on a live object");
  }

  std::uint64_t n = 0;
  std::uint64_t nonzero = 0;
  const auto t0 = Clock::now();
  const auto deadline = t0 + std::chrono::duration<double>(seconds);
  auto t = t0;
  try {
    do {
      for (unsigned k = 0; k < kQueriesPerCheck; ++k) {
        freeze_or_fail(c, o);
        const std::int64_t q = c.query(o);
        c.unfreeze(o);
        nonzero += q != 0 ? 1 : 0;
      }
      n += kQueriesPerCheck;
      t = Clock::now();
    } while (t < deadline);
  } catch (...) {
    finish();
    throw;
  }
  finish();
  if constexpr (C::kCounts && C::kExact) {
    if (nonzero != 0) {
      throw PointFailed(
          fmt::format("{} of {} frozen queries were not 0 with no reference held", nonzero, n));
    }
  }
  return std::chrono::duration<double>(t - t0).count() / static_cast<double>(n);
}

struct Point {
  std::string workload;
  unsigned threads;
};

int run_micro(const MicroOptions& opt) {
  // ---- validate everything before measuring anything ----
  const auto counters = selected(opt.counters, all_counter_names(), "--counters");
  const auto workloads = selected(opt.workloads, kWorkloads, "--workloads");
  const std::vector<SlotMode> slot_modes = selected_slot_modes(opt.slot_modes);
  const std::vector<unsigned> threads = threads_or_cpus(opt.threads);
  const auto slot_counts = powers_of_two_up_to(opt.max_slots);
  Outputs outputs(opt.json, opt.csv);

  std::vector<Point> points;
  for (const auto& w : workloads) {
    if (w == "hot") {
      for (unsigned t : threads) points.push_back({w, t});
    } else if (w == "single") {
      points.push_back({w, 1});
    } else {
      for (unsigned s : slot_counts) points.push_back({w, s});
    }
  }

  // ---- measure ----
  // PAYGO once per slot mode, the other counters once.
  std::size_t runs = 0;
  for_each_selected(counters, [&]<class C>() { runs += slot_modes_of<C>(slot_modes).size(); });
  Progress progress(points.size() * runs);
  std::vector<Result> results;
  unsigned failures = 0;
  for (const Point& p : points) {
    for_each_selected(counters, [&]<class C>() {
      for (const std::optional<SlotMode> slot : slot_modes_of<C>(slot_modes)) {
        const std::string what = fmt::format("micro {} {}{} threads={}", p.workload, C::kName,
                                             slot_mode_label(slot), p.threads);
        const std::string unit = p.workload == "query" ? "s" : "ops/s";
        std::vector<double> samples;
        try {
          for (unsigned r = 0; r < opt.repeat; ++r) {
            samples.push_back(p.workload == "query" ? query_once<C>(p.threads, opt.duration, slot)
                                                    : hot_once<C>(p.threads, opt.duration, slot));
          }
        } catch (const PointFailed& e) {
          ++failures;
          progress.report(what, fmt::format("FAILED: {}", e.what()));
          continue;
        }
        Result res{"micro",   p.workload,   std::string(C::kName), std::nullopt,
                   p.threads, std::nullopt, summarize(samples),    unit};
        res.slot_mode = slot_mode_field(slot);
        progress.report(what, fmt::format("{}{} (median of {})", human(res.stats.median, unit),
                                          unit == "s" ? "" : " ops/s", samples.size()));
        results.push_back(std::move(res));
      }
    });
  }

  // ---- report ----
  nlohmann::json config = {{"command", "micro"},     {"counters", counters},
                           {"workloads", workloads}, {"threads", threads},
                           {"slots", slot_counts},   {"duration_s", opt.duration},
                           {"repeat", opt.repeat},   {"slot_modes", names_of(slot_modes)}};
  outputs.write(config, results);
  print_tables(results);
  return outputs.finish(failures);
}

}  // namespace

Subcommand add_micro_command(CLI::App& app) {
  auto opt = std::make_shared<MicroOptions>();
  CLI::App* sub = app.add_subcommand(
      "micro",
      "The counters on their own: get/put throughput on one hot object, and the cost of a "
      "query.\n"
      "Workloads:\n"
      "  hot     T threads, pinned round-robin to the usable CPUs and started together, loop\n"
      "          { tok = get(obj); tok.reset(); } on ONE shared object marked distributed\n"
      "          (set_distributed(obj, true)) for --duration seconds. Result: ops/s summed over\n"
      "          the threads, one point per T in --threads.\n"
      "  single  the same with one thread (the uncontended fast path). Result: ops/s.\n"
      "  query   S helper threads (all alive at once, so S slots) each take and release one\n"
      "          distributed reference to the object, then sleep; the main thread then times\n"
      "          try_freeze + query + unfreeze in a loop for --duration seconds. No reference\n"
      "          is held while timing (some counters refuse to freeze while one is), so this is\n"
      "          the cost of an exact zero check on an object S slots have touched. A refused\n"
      "          freeze is retried (and timed) for up to 1 s, then the point fails.\n"
      "          Result: seconds per query, one point per S in 1,2,4,... up to --max-slots.\n"
      "PAYGO runs once per --slot-mode (default: the library's), built with the library's\n"
      "options but that slot mode, so with max_slots = " +
          std::to_string(PaygoOptions{}.max_slots) +
          " (not --max-slots, which only\n"
          "sets the S of 'query'): in mode thread, the threads beyond " +
          std::to_string(PaygoOptions{}.max_slots) +
          " count on the\n"
          "object's central word; in mode spill, on per-CPU tables; in mode cpu, every thread\n"
          "counts on its CPU's table. The other counters run once (slot_mode null).\n"
          "Each point runs --repeat times with a fresh counter and object; the median, min and\n"
          "max are reported. Progress goes to stderr, tables (with ratios to the noop and atomic\n"
          "baselines) to stdout. Exit code: 0 ok, 1 a point failed, 2 bad arguments.");
  add_counters(sub, opt->counters);
  add_names(sub, "--workloads", opt->workloads, kWorkloads, "Comma-separated workloads");
  add_slot_modes(sub, opt->slot_modes);
  add_threads(sub, opt->threads, 4096, " for 'hot'");
  add_duration(sub, opt->duration);
  add_repeat(sub, opt->repeat);
  sub->add_option("--max-slots", opt->max_slots,
                  "Largest slot count S for 'query' (S = 1, 2, 4, ... up to it; S helper "
                  "threads alive at once), 1..1024. Not PAYGO's max_slots (see above)")
      ->check(CLI::Range(1U, 1024U))
      ->capture_default_str();
  add_outputs(sub, opt->json, opt->csv);
  return {sub, [opt] { return run_micro(*opt); }};
}

}  // namespace paygo::bench
