// paygo-stress: a long-running randomized stress test of the counters and of
// the page cache, with invariants checked while it runs (docs/verification.md,
// "The stress tool").
//
// Counter phase: T worker threads get, put and migrate tokens (hand them to
// another worker through a mailbox) on M objects, some hot (distributed) and
// some cold; a reclaimer thread runs try_reclaim, reclaim_batch, frozen
// queries, reset (recycling dead objects) and set_distributed flips. Checked
// all the time:
//   * a reclaim that succeeds while the object's shadow count (live tokens,
//     incremented after a successful get, decremented before the put) is
//     non-zero;
//   * a get that succeeds on a dead object, or a token holder that sees its
//     object's payload poisoned (reclaimed) or changed (recycled) while it
//     holds the token;
//   * a frozen query below the shadow count read after it.
// Every ~100 ms all threads meet at a std::barrier and, at that quiescent
// point, every live object's freeze + query (approx where the freeze is
// refused because central references are held) must equal its shadow count.
//
// Modes (PAYGO, a self-tuning counter): the reclaimer is the only thread that
// pins or un-pins (set_distributed / set_mode) and it keeps a record of each
// object's pin, published like a seqlock; checked all the time:
//   * a pinned object's mode() (and distributed()) is the one it was pinned
//     to, whenever the reclaimer or a quiescent check looks: a pinned-
//     distributed object is never demoted, a pinned-central one never
//     promoted;
//   * a get on an object that was pinned central before the get, and still
//     is after it (same record version), never returns a distributed token.
//
// Phased mode (--phased, PAYGO only): objects start automatic (Mode::Auto)
// and the self-tuning options are set so that mode changes really happen
// (--promote-events, --promote-window-us, --demote-sweeps, --inhibit-ms).
// Time is cut into phases of random length around --phase-ms, hot and cold
// alternating: in hot phases every worker gets only the --shared first
// objects (contention: promotions), in cold phases each worker gets only
// its own objects (so the shared ones go quiet: demotions). One sweeper
// thread calls sweep() over all objects all the time; the reclaimer runs as
// always, and every ~250 us pins a random automatic object (distributed or
// central; a quarter of the tries on the shared ones) or hands a pinned one
// back (Mode::Auto), so most objects stay automatic. The run FAILS unless it
// saw promotions > 0 and demotions > 0; the sweeper's sweeps and the
// demotions its sweep() calls returned must equal tune_stats()' counts.
//
// Cache phase (--cache): T readers read random ranges and pin pages of a few
// temp files and check every byte against the file's pattern, and hand
// pinned pages to each other (the receiver checks the bytes again and
// unpins: a put from another thread), while another thread drops and
// advises (hot sections come and go, so pins are both central and
// distributed); the capacity is small, so pages are evicted all the time.
//
// Prints one final line (operations, self-tuning counts, violations); exits 1
// on any violation, after printing the first one.
#include <algorithm>
#include <barrier>
#include <chrono>
#include <concepts>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <mutex>
#include <random>
#include <span>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>

#include "../common/page_pattern.hpp"
#include "paygo/baselines/counter_list.hpp"
#include "paygo/cache/page_cache.hpp"
#include "paygo/paygo.hpp"

namespace {

using Clock = std::chrono::steady_clock;

struct Config {
  unsigned threads = 4;
  unsigned objects = 64;
  double seconds = 10;
  std::string counter = "paygo";
  std::uint64_t seed = 1;
  bool cache = false;
  unsigned max_slots = 0;
  std::string slot_mode;  // --slot-mode; empty: the library's default
  bool tight = false;
  // --phased and the self-tuning options (-1: the phased default if
  // --phased, else the library's default).
  bool raw = false;  // --raw
  bool phased = false;
  unsigned phase_ms = 20;
  unsigned shared = 4;
  unsigned sweep_us = 0;
  long promote_events = -1;
  long promote_window_us = -1;
  long demote_sweeps = -1;
  long inhibit_ms = -1;
};

/// Counters that tune themselves (Paygo): modes, sweep, tune_stats.
template <class C>
inline constexpr bool kSelfTuning = requires(C& c, typename C::Object& o,
                                             std::span<typename C::Object* const> objs) {
  c.set_mode(o, paygo::Mode::Auto);
  { c.mode(o) } -> std::same_as<paygo::Mode>;
  { c.sweep(objs) } -> std::same_as<std::size_t>;
  { c.tune_stats() } -> std::same_as<paygo::TuneStats>;
  { c.distributed(o) } -> std::same_as<bool>;
};
/// Tokens that tell which path they took (Paygo).
template <class C>
inline constexpr bool kTokenKind = requires(const typename C::Token& t) {
  { t.distributed() } -> std::same_as<bool>;
};

// ---- violations --------------------------------------------------------------

std::mutex g_violation_mu;
std::string g_first_violation;                 // guarded by g_violation_mu
std::atomic<std::uint64_t> g_violations{0};    // relaxed: a statistic until the join
std::atomic<bool> g_stop_on_violation{false};  // relaxed: a hint to wind down

void violation(const std::string& what) {
  if (g_violations.fetch_add(1, std::memory_order_relaxed) == 0) {
    std::lock_guard lock(g_violation_mu);
    g_first_violation = what;
    std::fprintf(stderr, "paygo-stress: VIOLATION: %s\n", what.c_str());
  }
  g_stop_on_violation.store(true, std::memory_order_relaxed);
}

struct Stats {
  std::uint64_t gets = 0, failed_gets = 0, puts = 0, migrations = 0, reclaims = 0, reclaimed = 0,
                batches = 0, resets = 0, flips = 0, queries = 0, checks = 0;
  std::uint64_t reads = 0, pins = 0, pin_migrations = 0, drops = 0, advises = 0, bytes_checked = 0;
  // Modes: distributed tokens handed out, pins and un-pins by the reclaimer,
  // the sweeper's sweeps and the demotions they returned, phases seen.
  std::uint64_t dups = 0;  // --raw: dup_raw() calls
  std::uint64_t dist_gets = 0, mode_pins = 0, mode_unpins = 0, sweeps = 0, swept = 0, phases = 0;
  void add(const Stats& o) {
    dist_gets += o.dist_gets;
    dups += o.dups;
    mode_pins += o.mode_pins;
    mode_unpins += o.mode_unpins;
    sweeps += o.sweeps;
    swept += o.swept;
    phases = std::max(phases, o.phases);
    gets += o.gets;
    failed_gets += o.failed_gets;
    puts += o.puts;
    migrations += o.migrations;
    reclaims += o.reclaims;
    reclaimed += o.reclaimed;
    batches += o.batches;
    resets += o.resets;
    flips += o.flips;
    queries += o.queries;
    checks += o.checks;
    reads += o.reads;
    pins += o.pins;
    pin_migrations += o.pin_migrations;
    drops += o.drops;
    advises += o.advises;
    bytes_checked += o.bytes_checked;
  }
  std::uint64_t counter_ops() const {
    return gets + failed_gets + puts + migrations + reclaims + batches + resets + flips + queries +
           dups;
  }
  std::uint64_t cache_ops() const { return reads + pins + pin_migrations + drops + advises; }
};

// ---- counter construction ----------------------------------------------------

template <class C>
std::unique_ptr<C> make_counter(const Config& cfg) {
  if constexpr (requires { typename C::Options; }) {
    typename C::Options o{};
    if (cfg.max_slots != 0) o.max_slots = cfg.max_slots;
    if constexpr (std::is_same_v<C, paygo::Paygo>) {
      if (!cfg.slot_mode.empty()) paygo::parse_slot_mode(cfg.slot_mode, o.slot_mode);
      if (cfg.tight) {  // tiny tables: window-full and saturation fallbacks, folds
        o.table_entries = 16;
        o.probe = 2;
        o.local_limit = 3;
        o.group_size = 1;
      }
      // Phased: promote after 2 contended gets within 50 ms, demote after 2
      // quiet sweeps, inhibit re-promotion for 1 ms only, so that every hot
      // phase can promote and every cold phase demote.
      const auto pick = [&](long v, long phased_default, std::uint32_t lib) {
        return static_cast<std::uint32_t>(v >= 0 ? v : cfg.phased ? phased_default : lib);
      };
      o.promote_events = pick(cfg.promote_events, 2, o.promote_events);
      o.promote_window_us = pick(cfg.promote_window_us, 50000, o.promote_window_us);
      o.demote_sweeps = pick(cfg.demote_sweeps, 2, o.demote_sweeps);
      o.inhibit_ms = pick(cfg.inhibit_ms, 1, o.inhibit_ms);
    }
    return std::make_unique<C>(o);
  } else {
    return std::make_unique<C>();
  }
}

// ---- counter phase -----------------------------------------------------------

constexpr std::uint64_t kPoison = ~std::uint64_t{0};

template <class C>
struct Obj {
  explicit Obj(C& c) : hdr(c) {}
  typename C::Object hdr;
  /// Live tokens (see the file comment). Relaxed: every read that matters is
  /// ordered by the counter itself (a put releases, a successful reclaim or
  /// query acquires) or by the barrier.
  std::atomic<std::int64_t> shadow{0};
  /// The incarnation, kPoison while dead. Written by the reclaimer before
  /// reset() (whose release publishes it to the next successful get);
  /// relaxed everywhere for that reason.
  std::atomic<std::uint64_t> payload{0};
  /// The reclaimer's record of the pin (the only thread that pins): bits
  /// 0..1 kPinAuto/kPinCentral/kPinDistributed, bit 2 kPinChanging while a
  /// change is under way, bits 3.. a version bumped by every change. See
  /// CounterPhase::change_mode() for the ordering.
  std::atomic<std::uint32_t> pin{0};
};

constexpr std::uint32_t kPinAuto = 0, kPinCentral = 1, kPinDistributed = 2, kPinModeMask = 3,
                        kPinChanging = 4, kPinVersion = 8;

const char* pin_name(std::uint32_t p) {
  switch (p & kPinModeMask) {
    case kPinCentral:
      return "pinned central";
    case kPinDistributed:
      return "pinned distributed";
    default:
      return "automatic";
  }
}

/// Phase k's length in ns (k even: hot): a deterministic function of the
/// seed, so every thread walks the same schedule on its own. Uniform in
/// [phase_ms / 4, 7 phase_ms / 4] (at least 1 ms).
std::int64_t phase_len_ns(const Config& cfg, std::uint64_t k) {
  std::uint64_t x = cfg.seed * 0x9E3779B97F4A7C15ULL + k + 1;  // splitmix64
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
  x ^= x >> 31;
  const std::int64_t lo = std::max<std::int64_t>(1'000'000, std::int64_t{cfg.phase_ms} * 250'000);
  const std::int64_t span = std::max<std::int64_t>(1, std::int64_t{cfg.phase_ms} * 1'500'000);
  return lo + static_cast<std::int64_t>(x % static_cast<std::uint64_t>(span));
}

template <class C>
struct Held {
  typename C::Token token;
  Obj<C>* ob;
  std::uint64_t inc;
  /// --raw (PAYGO): the reference as a raw token (Paygo::into_raw), put with
  /// put_raw(); several Helds may share one raw word (dup_raw()).
  std::uintptr_t raw = 0;
};
/// Raw tokens and dup_raw(): PAYGO's interface for one-word handles.
template <class C>
inline constexpr bool kRawTokens = std::same_as<C, paygo::Paygo>;

template <class C>
class CounterPhase {
 public:
  CounterPhase(const Config& cfg, Clock::time_point end)
      : cfg_(cfg), end_(end), counter_(make_counter<C>(cfg)), mailboxes_(cfg.threads) {
    std::mt19937_64 rng(cfg.seed);
    for (unsigned i = 0; i < cfg.objects; ++i) {
      objs_.push_back(std::make_unique<Obj<C>>(*counter_));
      if (cfg.phased) continue;  // automatic, as a new object is
      const bool on = (rng() & 1) != 0;
      counter_->set_distributed(objs_.back()->hdr, on);
      objs_.back()->pin.store(on ? kPinDistributed : kPinCentral, std::memory_order_relaxed);
    }
    dead_.assign(cfg.objects, 0);
    inc_.assign(cfg.objects, 0);
  }

  Stats run() {
    const auto sync_done = [this]() noexcept { quiescent_check(); };
    const unsigned helpers = cfg_.phased ? 2 : 1;  // the reclaimer (and the sweeper)
    std::barrier sync(static_cast<std::ptrdiff_t>(cfg_.threads + helpers), sync_done);
    next_sync_ns_.store(ns_from_now(100), std::memory_order_relaxed);
    start_ns_ = ns_from_now(0);
    std::vector<Stats> stats(cfg_.threads + helpers);
    std::vector<std::thread> threads;
    for (unsigned i = 0; i < cfg_.threads; ++i) {
      threads.emplace_back([&, i] { worker(i, sync, stats[i]); });
    }
    threads.emplace_back([&] { reclaimer(sync, stats[cfg_.threads]); });
    if constexpr (kSelfTuning<C>) {
      if (cfg_.phased) threads.emplace_back([&] { sweeper(sync, stats[cfg_.threads + 1]); });
    }
    for (auto& t : threads) t.join();
    for (std::size_t i = 0; i < objs_.size(); ++i) check_mode(i, "at the end");
    // Everything was put by the workers; every object must now be free.
    for (std::size_t i = 0; i < objs_.size(); ++i) {
      Obj<C>& ob = *objs_[i];
      if (ob.shadow.load(std::memory_order_relaxed) != 0) {
        violation("object " + std::to_string(i) + ": shadow count not 0 at the end");
      }
      if (dead_[i]) continue;
      bool ok = false;
      for (int k = 0; k < paygo::reclaim_calls<C> && !ok; ++k) ok = counter_->try_reclaim(ob.hdr);
      if (!ok) violation("object " + std::to_string(i) + ": not reclaimable at the end");
    }
    Stats total;
    for (auto& s : stats) total.add(s);
    total.checks = checks_;
    if constexpr (kSelfTuning<C>) {
      tune_ = counter_->tune_stats();
      if (cfg_.phased) {
        // Only the sweeper sweeps, and only sweep() demotes.
        if (tune_.sweeps != total.sweeps || tune_.demotions != total.swept) {
          violation("tune_stats() says " + std::to_string(tune_.sweeps) + " sweeps and " +
                    std::to_string(tune_.demotions) + " demotions; the sweeper made " +
                    std::to_string(total.sweeps) + " sweeps that returned " +
                    std::to_string(total.swept) + " demotions");
        }
        // The point of --phased: the mode changes must have happened.
        if (tune_.promotions == 0 || tune_.demotions == 0) {
          violation("phased run without mode changes: promotions " +
                    std::to_string(tune_.promotions) + ", demotions " +
                    std::to_string(tune_.demotions) + " (both must be > 0)");
        }
      }
    }
    return total;
  }

  paygo::TuneStats tune() const { return tune_; }

 private:
  static std::int64_t ns_from_now(int ms) {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               (Clock::now() + std::chrono::milliseconds(ms)).time_since_epoch())
        .count();
  }
  bool sync_due() const {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
               .count() >= next_sync_ns_.load(std::memory_order_relaxed);
  }

  // Runs in one thread while every other one waits at the barrier: no get,
  // put, reclaim or mode change is in flight.
  void quiescent_check() {
    ++checks_;
    for (std::size_t i = 0; i < objs_.size(); ++i) {
      check_mode(i, "at a quiescent check");
      Obj<C>& ob = *objs_[i];
      const std::int64_t shadow = ob.shadow.load(std::memory_order_relaxed);
      if (dead_[i]) {
        if (shadow != 0) {
          violation("object " + std::to_string(i) + " is dead with " + std::to_string(shadow) +
                    " live tokens");
        }
        continue;
      }
      if (counter_->try_freeze(ob.hdr)) {
        const std::int64_t q = counter_->query(ob.hdr);
        counter_->unfreeze(ob.hdr);
        if (q != shadow) {
          violation("quiescent check " + std::to_string(checks_) + ": object " + std::to_string(i) +
                    " query " + std::to_string(q) + " != live tokens " + std::to_string(shadow));
        }
      } else {
        const std::int64_t a = counter_->approx(ob.hdr);
        if (shadow == 0 || a != shadow) {
          violation("quiescent check " + std::to_string(checks_) + ": object " + std::to_string(i) +
                    " freeze refused; approx " + std::to_string(a) + ", live tokens " +
                    std::to_string(shadow));
        }
      }
    }
    const bool over = Clock::now() >= end_ || g_stop_on_violation.load(std::memory_order_relaxed);
    stop_ = over;  // read by every thread after the barrier (which orders it)
    next_sync_ns_.store(ns_from_now(100), std::memory_order_relaxed);
  }

  /// A pinned object is in the mode it was pinned to. Called by the
  /// reclaimer (the only pinner) and at quiescent points: nothing else may
  /// change a pinned mode (promotion and demotion leave pinned objects
  /// alone; reset() keeps the pin).
  void check_mode(std::size_t i, const char* when) {
    if constexpr (kSelfTuning<C>) {
      Obj<C>& ob = *objs_[i];
      const std::uint32_t p = ob.pin.load(std::memory_order_relaxed) & kPinModeMask;
      const paygo::Mode m = counter_->mode(ob.hdr);
      const bool d = counter_->distributed(ob.hdr);
      const bool ok = p == kPinCentral       ? m == paygo::Mode::Central && !d
                      : p == kPinDistributed ? m == paygo::Mode::Distributed && d
                                             : m == paygo::Mode::Auto;
      if (!ok) {
        violation("object " + std::to_string(i) + " was " + pin_name(p) + " but " + when +
                  " mode() is " +
                  (m == paygo::Mode::Auto      ? "Auto"
                   : m == paygo::Mode::Central ? "Central"
                                               : "Distributed") +
                  " and distributed() " + (d ? "true" : "false"));
      }
    }
  }

  /// Pin (kPinCentral / kPinDistributed) or un-pin (kPinAuto), reclaimer
  /// only. The record is a seqlock: kPinChanging (relaxed store), a fence,
  /// the mode change, then the next version (release). A worker that read a
  /// stable kPinCentral (acquire) before its get and reads the same record
  /// after it (behind light_fence(), which pairs with our heavy_fence()) knew
  /// the object pinned central for the whole get: a distributed token then is
  /// a bug. If its get saw any mode write of this change, the fences make it
  /// see kPinChanging or later. Only a change away from kPinCentral needs the
  /// fence (the check is about pinned-central objects).
  void change_mode(std::size_t i, std::uint32_t to, Stats& st) {
    Obj<C>& ob = *objs_[i];
    check_mode(i, "before a mode change");
    const std::uint32_t p = ob.pin.load(std::memory_order_relaxed);  // only we write it
    if ((p & kPinModeMask) == kPinCentral) {
      ob.pin.store(p | kPinChanging, std::memory_order_relaxed);
      paygo::heavy_fence();
    }
    if (to != kPinAuto) {
      counter_->set_distributed(ob.hdr, to == kPinDistributed);  // the pinning hint
    } else if constexpr (kSelfTuning<C>) {
      counter_->set_mode(ob.hdr, paygo::Mode::Auto);
    }
    ob.pin.store(((p & ~(kPinVersion - 1)) + kPinVersion) | to, std::memory_order_release);
    ++(to == kPinAuto ? st.mode_unpins : st.mode_pins);
    ++st.flips;
    check_mode(i, "right after the mode change");
  }

  /// Walks the phase schedule (phase_len_ns()) up to now: k even is hot.
  struct PhaseCursor {
    std::uint64_t k = 0;
    std::int64_t end_ns = 0;
  };
  bool hot_now(PhaseCursor& pc) const {
    const std::int64_t now = ns_from_now(0);
    if (pc.end_ns == 0) pc.end_ns = start_ns_ + phase_len_ns(cfg_, 0);
    while (now >= pc.end_ns) pc.end_ns += phase_len_ns(cfg_, ++pc.k);
    return (pc.k & 1) == 0;
  }
  /// The object of a worker's next get: any (not phased), a shared one (hot
  /// phase: [0, shared)), or one of its own (cold: shared + me + k threads).
  Obj<C>& pick(unsigned me, bool hot, std::mt19937_64& rng) {
    if (!cfg_.phased) return *objs_[rng() % objs_.size()];
    if (hot) return *objs_[rng() % cfg_.shared];
    const std::size_t own = (objs_.size() - cfg_.shared - me + cfg_.threads - 1) / cfg_.threads;
    return *objs_[cfg_.shared + me + (rng() % own) * cfg_.threads];
  }

  void check_held(const Held<C>& h, const char* when) {
    const std::uint64_t p = h.ob->payload.load(std::memory_order_relaxed);
    if (p != h.inc) {
      violation(std::string("token holder (") + when + ") saw object " +
                std::to_string(index_of(h.ob)) + " incarnation " +
                (p == kPoison ? std::string("POISONED (reclaimed)") : std::to_string(p)) +
                " while holding a token of incarnation " + std::to_string(h.inc));
    }
  }
  std::size_t index_of(const Obj<C>* ob) const {
    for (std::size_t i = 0; i < objs_.size(); ++i) {
      if (objs_[i].get() == ob) return i;
    }
    return objs_.size();
  }

  static constexpr std::size_t kMaxHeld = 16;  // tokens per worker, and per mailbox

  static void remove_at(std::vector<Held<C>>& v, std::size_t i) {
    if (i + 1 != v.size()) v[i] = std::move(v.back());
    v.pop_back();
  }

  void put(Held<C>& h, Stats& st) {
    check_held(h, "put");
    h.ob->shadow.fetch_sub(1, std::memory_order_relaxed);  // before the put: see Obj::shadow
    if constexpr (kRawTokens<C>) {
      if (h.raw != 0) {
        counter_->put_raw(std::exchange(h.raw, 0));
        ++st.puts;
        return;
      }
    }
    counter_->put(std::move(h.token));
    ++st.puts;
  }

  template <class Barrier>
  void worker(unsigned me, Barrier& sync, Stats& st) {
    std::mt19937_64 rng(cfg_.seed * 1000003 + me + 1);
    std::vector<Held<C>> held;
    PhaseCursor pc;
    for (;;) {
      const bool hot = cfg_.phased && hot_now(pc);
      for (int k = 0; k < 64; ++k) {
        const auto r = rng() % 100;
        if (r < 35 || held.empty()) {
          Obj<C>& ob = pick(me, hot, rng);
          // Acquire: pairs with change_mode()'s release (see there).
          const std::uint32_t pin0 = ob.pin.load(std::memory_order_acquire);
          typename C::Token t = counter_->get(ob.hdr);
          if (!t) {
            ++st.failed_gets;  // frozen or dead right now
            continue;
          }
          ++st.gets;
          if constexpr (kTokenKind<C>) {
            if (t.distributed()) {
              ++st.dist_gets;
              if (pin0 == (pin0 & ~kPinChanging) && (pin0 & kPinModeMask) == kPinCentral) {
                paygo::light_fence();  // pairs with heavy_fence() in change_mode()
                if (ob.pin.load(std::memory_order_relaxed) == pin0) {
                  violation("object " + std::to_string(index_of(&ob)) +
                            ", pinned central for the whole get, handed out a distributed "
                            "token");
                }
              }
            }
          }
          const std::uint64_t p = ob.payload.load(std::memory_order_relaxed);
          if (p == kPoison) {
            violation("get succeeded on dead object " + std::to_string(index_of(&ob)));
          }
          ob.shadow.fetch_add(1, std::memory_order_relaxed);  // after the get
          if constexpr (kRawTokens<C>) {
            // Every reference raw: put_raw() must put every reference of an
            // object that has dup'ed ones (Paygo::dup_raw()).
            if (cfg_.raw) {
              held.push_back(Held<C>{{}, &ob, p, counter_->into_raw(std::move(t))});
              t = {};
            }
          }
          if (t) held.push_back(Held<C>{std::move(t), &ob, p});
          if (held.size() > kMaxHeld) {
            put(held.front(), st);
            held.erase(held.begin());
          }
        } else if (r < 65) {
          const std::size_t i = rng() % held.size();
          put(held[i], st);
          remove_at(held, i);
        } else if (r < 80) {
          // Bounded mailboxes: a fast thread must not bury a descheduled one
          // in tokens (on a small machine threads do run at very different
          // rates); a full mailbox turns the migration into a put.
          const std::size_t i = rng() % held.size();
          const unsigned to = static_cast<unsigned>(rng() % cfg_.threads);
          bool sent = false;
          {
            std::lock_guard lock(mailboxes_[to].mu);
            if (mailboxes_[to].items.size() < kMaxHeld) {
              mailboxes_[to].items.push_back(std::move(held[i]));
              sent = true;
            }
          }
          if (sent) {
            ++st.migrations;
          } else {
            put(held[i], st);
          }
          remove_at(held, i);
        } else if (r < 92) {
          std::lock_guard lock(mailboxes_[me].mu);
          auto& items = mailboxes_[me].items;
          while (!items.empty() && held.size() < 2 * kMaxHeld) {
            held.push_back(std::move(items.back()));
            items.pop_back();
          }
        } else if (kRawTokens<C> && cfg_.raw && r < 96) {
          // dup_raw(): one more reference through a raw token we hold (it
          // may have been taken on another slot: a dup away from home),
          // put later by whoever holds the copy, home or away.
          if constexpr (kRawTokens<C>) {
            const std::size_t i = rng() % held.size();
            if (held[i].raw != 0 && held.size() < 2 * kMaxHeld) {
              check_held(held[i], "dup");
              counter_->dup_raw(held[i].raw);
              held[i].ob->shadow.fetch_add(1, std::memory_order_relaxed);  // after the dup
              held.push_back(Held<C>{{}, held[i].ob, held[i].inc, held[i].raw});
              ++st.dups;
            }
          }
        } else {
          for (const auto& h : held) check_held(h, "poll");
        }
      }
      if (sync_due()) {
        sync.arrive_and_wait();
        if (stop_) break;
      }
    }
    st.phases = pc.k + 1;
    // Wind down: release what we hold, then (after everyone stopped taking
    // from mailboxes) what was sent to us.
    for (auto& h : held) put(h, st);
    held.clear();
    sync.arrive_and_wait();
    std::lock_guard lock(mailboxes_[me].mu);
    for (auto& h : mailboxes_[me].items) put(h, st);
    mailboxes_[me].items.clear();
  }

  void on_dead(std::size_t i, const char* how) {
    Obj<C>& ob = *objs_[i];
    const std::int64_t shadow = ob.shadow.load(std::memory_order_relaxed);
    if (shadow != 0) {
      violation(std::string(how) + " reclaimed object " + std::to_string(i) + " with " +
                std::to_string(shadow) + " live tokens");
    }
    ob.payload.store(kPoison, std::memory_order_relaxed);  // holders that still see it: a bug
    dead_[i] = 1;
  }

  template <class Barrier>
  void reclaimer(Barrier& sync, Stats& st) {
    std::mt19937_64 rng(cfg_.seed * 7919 + 17);
    std::vector<typename C::Object*> batch;
    std::vector<std::size_t> batch_idx;
    std::unique_ptr<bool[]> dead(new bool[16]);
    std::int64_t next_mode_ns = 0;
    for (;;) {
      if (cfg_.phased) {
        // Every 250 us or so (while this thread runs): pin an automatic
        // object (1 in 4 tries; half central, half distributed) or hand a
        // pinned one back, so that about a fifth of the objects are pinned
        // at any time. A quarter of the tries are on the shared objects:
        // pins that race with their promotions and demotions.
        const std::int64_t now = ns_from_now(0);
        if (now >= next_mode_ns) {
          next_mode_ns = now + static_cast<std::int64_t>(rng() % 500'000);
          const std::size_t i = rng() % (rng() % 4 == 0 ? cfg_.shared : objs_.size());
          const std::uint32_t p = objs_[i]->pin.load(std::memory_order_relaxed) & kPinModeMask;
          if (p != kPinAuto) {
            change_mode(i, kPinAuto, st);
          } else if (rng() % 4 == 0) {
            change_mode(i, (rng() & 1) != 0 ? kPinDistributed : kPinCentral, st);
          }
        }
      }
      for (int k = 0; k < 16; ++k) {
        const std::size_t i = rng() % objs_.size();
        Obj<C>& ob = *objs_[i];
        const auto r = rng() % 100;
        if (r < 35) {
          if (dead_[i]) continue;
          ++st.reclaims;
          if (counter_->try_reclaim(ob.hdr)) {
            ++st.reclaimed;
            on_dead(i, "try_reclaim");
          }
        } else if (r < 50) {
          batch.clear();
          batch_idx.clear();
          const std::size_t n = 1 + rng() % 16;
          for (std::size_t j = 0; j < n; ++j) {
            const std::size_t x = rng() % objs_.size();
            if (dead_[x]) continue;
            bool dup = false;
            for (std::size_t y : batch_idx) dup = dup || y == x;
            if (dup) continue;
            batch.push_back(&objs_[x]->hdr);
            batch_idx.push_back(x);
          }
          ++st.batches;
          counter_->reclaim_batch(batch, std::span<bool>(dead.get(), batch.size()));
          for (std::size_t j = 0; j < batch.size(); ++j) {
            if (dead[j]) {
              ++st.reclaimed;
              on_dead(batch_idx[j], "reclaim_batch");
            }
          }
        } else if (r < 75) {
          if (!dead_[i]) continue;
          ob.payload.store(++inc_[i], std::memory_order_relaxed);  // published by reset()
          dead_[i] = 0;
          counter_->reset(ob.hdr);
          ++st.resets;
        } else if (r < 88 && !cfg_.phased) {
          change_mode(i, (rng() & 1) != 0 ? kPinDistributed : kPinCentral, st);
        } else {
          // A frozen query races only with puts (gets fail): it may
          // overcount, never count less than the tokens still live after it.
          if (dead_[i] || !counter_->try_freeze(ob.hdr)) continue;
          ++st.queries;
          const std::int64_t q = counter_->query(ob.hdr);
          const std::int64_t shadow = ob.shadow.load(std::memory_order_relaxed);
          counter_->unfreeze(ob.hdr);
          if constexpr (C::kExact) {
            if (q < shadow) {
              violation("frozen query of object " + std::to_string(i) + " = " + std::to_string(q) +
                        " < live tokens " + std::to_string(shadow));
            }
          }
        }
      }
      if (sync_due()) {
        sync.arrive_and_wait();
        if (stop_) break;
      }
    }
    sync.arrive_and_wait();  // the workers' wind-down
  }

  /// --phased: the one thread that sweeps (sweeps of one object must not
  /// overlap), over all objects, all the time (or every --sweep-us).
  template <class Barrier>
  void sweeper(Barrier& sync, Stats& st) {
    if constexpr (kSelfTuning<C>) {
      std::vector<typename C::Object*> all;
      for (auto& ob : objs_) all.push_back(&ob->hdr);
      for (;;) {
        for (int k = 0; k < 8; ++k) {
          const std::size_t n = counter_->sweep(all);
          ++st.sweeps;
          st.swept += n;
          if (n > all.size()) violation("sweep() returned " + std::to_string(n) + " demotions");
          if (cfg_.sweep_us != 0) {
            std::this_thread::sleep_for(std::chrono::microseconds(cfg_.sweep_us));
          }
        }
        if (sync_due()) {
          sync.arrive_and_wait();
          if (stop_) break;
        }
      }
      sync.arrive_and_wait();  // the workers' wind-down
    } else {
      (void)sync;
      (void)st;
    }
  }

  struct Mailbox {
    std::mutex mu;
    std::vector<Held<C>> items;
  };

  const Config& cfg_;
  const Clock::time_point end_;
  std::unique_ptr<C> counter_;
  std::vector<std::unique_ptr<Obj<C>>> objs_;
  std::vector<Mailbox> mailboxes_;
  std::vector<char> dead_;                     // reclaimer-owned; read at the barrier
  std::vector<std::uint64_t> inc_;             // reclaimer-owned
  std::atomic<std::int64_t> next_sync_ns_{0};  // relaxed: a deadline hint
  std::int64_t start_ns_ = 0;                  // written before the threads start
  paygo::TuneStats tune_{};                    // after the join
  bool stop_ = false;                          // written at the barrier, read after it
  std::uint64_t checks_ = 0;                   // written at the barrier
};

// ---- cache phase -------------------------------------------------------------

namespace fs = std::filesystem;
using paygo::cache::Advice;
using paygo::cache::kPageSize;

using paygo::test_support::pattern;  // tests/common/page_pattern.hpp

template <class C>
Stats cache_phase(const Config& cfg, Clock::time_point end) {
  std::string tmpl = (fs::temp_directory_path() / "paygo-stress-XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) {
    violation("mkdtemp failed");
    return {};
  }
  const fs::path dir = tmpl;
  const std::vector<std::uint64_t> sizes = {41 * kPageSize + 123, 7 * kPageSize, kPageSize - 5,
                                            13 * kPageSize + 1};
  paygo::cache::CacheOptions opt;
  // More frames than can be pinned at once: per reader 2 own pins, 2 in its
  // mailbox and 1 page of a read in flight.
  opt.capacity_bytes = (6 * cfg.threads + 8) * kPageSize;
  opt.evict_batch = 4;
  opt.drop_batch = 8;
  Stats total;
  {
    paygo::cache::PageCache<C> cache(opt);
    std::vector<paygo::cache::FileId> ids;
    for (std::uint32_t f = 0; f < sizes.size(); ++f) {
      const std::string p = (dir / ("f" + std::to_string(f))).string();
      std::vector<std::uint8_t> buf(sizes[f]);
      for (std::uint64_t i = 0; i < sizes[f]; ++i) buf[i] = pattern(f, i);
      FILE* fp = std::fopen(p.c_str(), "wb");
      if (fp == nullptr || std::fwrite(buf.data(), 1, buf.size(), fp) != buf.size()) std::abort();
      std::fclose(fp);
      auto id = cache.open(p);
      if (!id) {
        violation("open " + p + ": " + id.error().message());
        return {};
      }
      ids.push_back(*id);
    }
    std::atomic<bool> stop{false};  // relaxed: a stop hint; the join orders the rest
    auto check_bytes = [&](std::uint32_t f, std::uint64_t off, const std::uint8_t* p, std::size_t n,
                           const char* what, Stats& st) {
      for (std::size_t i = 0; i < n; ++i) {
        if (p[i] != pattern(f, off + i)) {
          violation(std::string(what) + ": file " + std::to_string(f) + " offset " +
                    std::to_string(off + i) + " holds the wrong byte");
          return;
        }
      }
      st.bytes_checked += n;
    };
    struct Pin {
      typename paygo::cache::PageCache<C>::PinnedPage page;
      std::uint32_t f;
      std::uint64_t pg;
    };
    // One mailbox per reader: pins handed over by the others.
    struct Mailbox {
      std::mutex mu;
      std::vector<Pin> pins;  // guarded by mu
    };
    std::vector<Mailbox> boxes(cfg.threads);
    auto check_pin = [&](const Pin& p, const char* what, Stats& st) {
      check_bytes(p.f, p.pg * kPageSize,
                  reinterpret_cast<const std::uint8_t*>(p.page.bytes().data()), p.page.size(), what,
                  st);
    };
    auto reader = [&](unsigned me, Stats& st) {
      std::mt19937_64 rng(cfg.seed * 31 + me);
      std::vector<std::uint8_t> buf(3 * kPageSize + 64);
      std::vector<Pin> pins, received;
      while (!stop.load(std::memory_order_relaxed)) {
        if (rng() % 8 == 0) {  // unpin what the others handed us, here
          {
            std::lock_guard lock(boxes[me].mu);
            received.swap(boxes[me].pins);
          }
          for (const Pin& p : received) check_pin(p, "migrated pin", st);
          received.clear();
        }
        const auto f = static_cast<std::uint32_t>(rng() % sizes.size());
        const std::uint64_t size = sizes[f];
        const auto r = rng() % 100;
        if (r < 60) {
          const std::uint64_t off = rng() % (size + 100);
          const std::size_t len = 1 + rng() % buf.size();
          const std::size_t want =
              off >= size ? 0 : static_cast<std::size_t>(std::min<std::uint64_t>(len, size - off));
          auto got = cache.read(ids[f], buf.data(), len, off);
          ++st.reads;
          if (!got) {
            violation("read(file " + std::to_string(f) + ", off " + std::to_string(off) + ", len " +
                      std::to_string(len) + "): " + got.error().message());
          } else if (*got != want) {
            violation("read(file " + std::to_string(f) + ", off " + std::to_string(off) + ", len " +
                      std::to_string(len) + ") returned " + std::to_string(*got) +
                      " bytes, expected " + std::to_string(want));
          } else {
            check_bytes(f, off, buf.data(), *got, "read", st);
          }
        } else if (r < 85) {
          if (pins.size() >= 2) pins.erase(pins.begin());
          const std::uint64_t pg = rng() % ((size + kPageSize - 1) / kPageSize);
          auto p = cache.pin(ids[f], pg);
          ++st.pins;
          if (!p) {
            violation("pin(file " + std::to_string(f) + ", page " + std::to_string(pg) +
                      "): " + p.error().message());
            continue;
          }
          const std::uint64_t expect = std::min<std::uint64_t>(kPageSize, size - pg * kPageSize);
          if (p->size() != expect) {
            violation("pin(file " + std::to_string(f) + ", page " + std::to_string(pg) + ") has " +
                      std::to_string(p->size()) + " bytes");
          }
          check_bytes(f, pg * kPageSize, reinterpret_cast<const std::uint8_t*>(p->bytes().data()),
                      p->size(), "pin", st);
          pins.push_back(Pin{std::move(*p), f, pg});
        } else if (r < 93 && !pins.empty()) {
          // Still the same bytes, however much was evicted meanwhile.
          check_pin(pins.back(), "held pin", st);
          pins.pop_back();
        } else if (!pins.empty() && cfg.threads > 1) {
          // Hand the pin to another reader, which unpins it.
          const auto to = static_cast<unsigned>((me + 1 + rng() % (cfg.threads - 1)) % cfg.threads);
          check_pin(pins.back(), "pin before migration", st);
          std::lock_guard lock(boxes[to].mu);
          if (boxes[to].pins.size() < 2) {  // bounded: see capacity_bytes
            boxes[to].pins.push_back(std::move(pins.back()));
            ++st.pin_migrations;
          }
          pins.pop_back();  // unpins here if the mailbox was full
        }
      }
    };
    auto dropper = [&](Stats& st) {
      std::mt19937_64 rng(cfg.seed * 131 + 7);
      while (!stop.load(std::memory_order_relaxed)) {
        const auto r = rng() % 100;
        if (r < 20) {
          auto rep = cache.drop(rng() % 2 == 0 ? 0 : 1 + rng() % 8);
          (void)rep;
          ++st.drops;
          const auto s = cache.stats();
          if (s.cached_pages > s.frames || s.free_frames > s.frames) {
            violation("stats after drop: cached " + std::to_string(s.cached_pages) + ", free " +
                      std::to_string(s.free_frames) + " of " + std::to_string(s.frames) +
                      " frames");
          }
        } else {
          const auto f = static_cast<std::uint32_t>(rng() % sizes.size());
          const std::uint64_t off = rng() % (sizes[f] + kPageSize);
          const std::uint64_t len = rng() % 4 == 0 ? 0 : rng() % (8 * kPageSize);
          static constexpr Advice kAdvice[] = {Advice::Hot, Advice::Normal, Advice::WillNeed,
                                               Advice::DontNeed};
          const Advice a = kAdvice[rng() % 4];
          auto res = cache.advise(ids[f], off, len, a);
          ++st.advises;
          if (!res) violation("advise: " + res.error().message());
        }
        std::this_thread::yield();
      }
    };
    std::vector<Stats> stats(cfg.threads + 1);
    std::vector<std::thread> threads;
    for (unsigned i = 0; i < cfg.threads; ++i) {
      threads.emplace_back([&, i] { reader(i, stats[i]); });
    }
    threads.emplace_back([&] { dropper(stats[cfg.threads]); });
    while (Clock::now() < end && !g_stop_on_violation.load(std::memory_order_relaxed)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    stop.store(true, std::memory_order_relaxed);
    for (auto& t : threads) t.join();
    for (auto& b : boxes) {  // pins nobody collected: check them, unpin here
      for (const Pin& p : b.pins) check_pin(p, "migrated pin", stats[0]);
      b.pins.clear();
    }
    for (auto& s : stats) total.add(s);
    // Nothing pinned any more: everything can go.
    const auto rep = cache.drop();
    if (rep.busy != 0) violation("final drop: " + std::to_string(rep.busy) + " frames busy");
    if (cache.stats().cached_pages != 0) violation("final drop left pages cached");
  }
  std::error_code ec;
  fs::remove_all(dir, ec);
  return total;
}

template <class C>
int run(const Config& cfg) {
  const auto start = Clock::now();
  const auto total =
      std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(cfg.seconds));
  const auto counter_end = start + (cfg.cache ? total / 2 : total);
  paygo::TuneStats tune{};
  Stats st;
  {
    CounterPhase<C> phase(cfg, counter_end);
    st = phase.run();
    tune = phase.tune();
  }
  if (cfg.cache && g_violations.load(std::memory_order_relaxed) == 0) {
    st.add(cache_phase<C>(cfg, start + total));
  }
  const double secs = std::chrono::duration<double>(Clock::now() - start).count();
  const std::uint64_t v = g_violations.load(std::memory_order_relaxed);
  std::printf(
      "paygo-stress: counter=%s threads=%u objects=%u seed=%llu fences=%s seconds=%.1f: "
      "%llu counter ops (gets %llu, failed gets %llu, puts %llu, migrations %llu, "
      "reclaim attempts %llu + %llu batches, reclaimed %llu, resets %llu, mode flips %llu, "
      "frozen queries %llu, quiescent checks %llu)",
      std::string(C::kName).c_str(), cfg.threads, cfg.objects,
      static_cast<unsigned long long>(cfg.seed),
      paygo::membarrier_in_use() ? "membarrier" : "seq_cst", secs,
      static_cast<unsigned long long>(st.counter_ops()), static_cast<unsigned long long>(st.gets),
      static_cast<unsigned long long>(st.failed_gets), static_cast<unsigned long long>(st.puts),
      static_cast<unsigned long long>(st.migrations), static_cast<unsigned long long>(st.reclaims),
      static_cast<unsigned long long>(st.batches), static_cast<unsigned long long>(st.reclaimed),
      static_cast<unsigned long long>(st.resets), static_cast<unsigned long long>(st.flips),
      static_cast<unsigned long long>(st.queries), static_cast<unsigned long long>(st.checks));
  if constexpr (kSelfTuning<C>) {
    std::printf(
        ", self-tuning%s (promotions %llu, demotions %llu, sweeps %llu, central fallbacks %llu, "
        "distributed tokens %llu, pins %llu, un-pins %llu",
        cfg.phased ? " phased" : "", static_cast<unsigned long long>(tune.promotions),
        static_cast<unsigned long long>(tune.demotions),
        static_cast<unsigned long long>(tune.sweeps),
        static_cast<unsigned long long>(tune.central_fallbacks),
        static_cast<unsigned long long>(st.dist_gets),
        static_cast<unsigned long long>(st.mode_pins),
        static_cast<unsigned long long>(st.mode_unpins));
    if (cfg.phased) std::printf(", phases %llu", static_cast<unsigned long long>(st.phases));
    if (cfg.raw) std::printf(", raw dups %llu", static_cast<unsigned long long>(st.dups));
    std::printf(")");
  }
  if (cfg.cache) {
    std::printf(
        ", %llu cache ops (reads %llu, pins %llu, pin migrations %llu, drops %llu, advises %llu; "
        "%llu bytes checked)",
        static_cast<unsigned long long>(st.cache_ops()), static_cast<unsigned long long>(st.reads),
        static_cast<unsigned long long>(st.pins),
        static_cast<unsigned long long>(st.pin_migrations),
        static_cast<unsigned long long>(st.drops), static_cast<unsigned long long>(st.advises),
        static_cast<unsigned long long>(st.bytes_checked));
  }
  std::printf("; violations %llu\n", static_cast<unsigned long long>(v));
  if (v != 0) {
    std::lock_guard lock(g_violation_mu);
    std::printf("paygo-stress: FAILED: first violation: %s\n", g_first_violation.c_str());
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Config cfg;
  CLI::App app{
      "paygo-stress: randomized get/put/migrate/reclaim/recycle stress with invariant "
      "checks (docs/verification.md)"};
  app.add_option("--threads", cfg.threads, "worker threads (plus one reclaimer)")
      ->check(CLI::Range(1U, 1024U));
  app.add_option("--objects", cfg.objects, "objects")->check(CLI::Range(1U, 1U << 20));
  app.add_option("--seconds", cfg.seconds, "run time (half of it in the cache phase with --cache)")
      ->check(CLI::PositiveNumber);
  std::vector<std::string> names;
  paygo::baselines::AllCounters::for_each([&]<class C>() {
    if (C::kCounts) names.emplace_back(C::kName);
  });
  app.add_option("--counter", cfg.counter, "counter to test")->check(CLI::IsMember(names));
  app.add_option("--seed", cfg.seed, "random seed");
  app.add_flag("--cache", cfg.cache, "also run a page-cache phase");
  app.add_option("--max-slots", cfg.max_slots, "slots of the counter (0: its default)");
  app.add_option("--slot-mode", cfg.slot_mode,
                 "paygo: where distributed gets count: thread, cpu or spill (default: the "
                 "library's, spill); workers are never pinned, so with more --threads than CPUs "
                 "the scheduler migrates them between get and put")
      ->check(CLI::IsMember({"thread", "cpu", "spill"}));
  app.add_flag("--tight", cfg.tight,
               "paygo: tiny tables (16 entries, probe 2, local_limit 3, group_size 1)");
  app.add_flag("--raw", cfg.raw,
               "paygo: hold every reference as a raw token (into_raw/put_raw) and dup some "
               "(dup_raw: RocksDB's Ref), home and away");
  app.add_flag("--phased", cfg.phased,
               "paygo: objects start automatic; hot phases (every worker on the --shared "
               "objects: promotions) alternate with cold ones (each worker on its own objects: "
               "demotions) while a sweeper thread sweeps; fails unless promotions > 0 and "
               "demotions > 0");
  app.add_option("--phase-ms", cfg.phase_ms,
                 "--phased: mean phase length (uniform in [1/4, 7/4] of it, at least 1 ms)")
      ->check(CLI::Range(1U, 100000U));
  app.add_option("--shared", cfg.shared, "--phased: objects shared in the hot phases")
      ->check(CLI::Range(1U, 1U << 20));
  app.add_option("--sweep-us", cfg.sweep_us, "--phased: sleep between sweeps (0: back to back)");
  app.add_option("--promote-events", cfg.promote_events,
                 "paygo Options::promote_events (default: 2 with --phased, else the library's)")
      ->check(CLI::Range(1L, 1L << 30));
  app.add_option("--promote-window-us", cfg.promote_window_us,
                 "paygo Options::promote_window_us (default: 50000 with --phased)")
      ->check(CLI::Range(0L, 1L << 30));
  app.add_option("--demote-sweeps", cfg.demote_sweeps,
                 "paygo Options::demote_sweeps (default: 2 with --phased)")
      ->check(CLI::Range(1L, 255L));
  app.add_option("--inhibit-ms", cfg.inhibit_ms,
                 "paygo Options::inhibit_ms (default: 1 with --phased)")
      ->check(CLI::Range(0L, 999L));
  CLI11_PARSE(app, argc, argv);
  if (cfg.phased && cfg.objects < cfg.shared + cfg.threads) {
    std::fprintf(stderr, "paygo-stress: --phased needs --objects >= --shared + --threads\n");
    return 2;
  }
  int rc = 2;
  paygo::baselines::AllCounters::for_each([&]<class C>() {
    if constexpr (C::kCounts) {
      if (C::kName != cfg.counter) return;
      if (cfg.phased && !kSelfTuning<C>) {
        std::fprintf(stderr, "paygo-stress: --phased needs a self-tuning counter (paygo)\n");
        return;
      }
      rc = run<C>(cfg);
    }
  });
  return rc;
}
