// libFuzzer harness for paygo::Paygo (docs/verification.md, "Fuzzing").
//
// The input is a header (counter options) and a sequence of operations, each
// executed by one of four worker threads that the harness drives one at a
// time (a hand-off through a mutex and condition variable), so a given input
// always runs the same way. Thread exits (slot retirement) and fresh threads
// (adoption) are operations too. After every operation the counter is
// compared with a reference model: the exact number of live tokens of each
// object, which objects are frozen or dead, which tokens are central, and
// each object's mode: automatic (self-tuning: a get may promote it, a sweep
// may demote it, nothing else changes its DISTRIBUTED bit but set_mode(Auto)
// and reset(), which make it central), pinned distributed or pinned central
// (never changes by itself; a pinned-central object never hands out a
// distributed token, nor does an automatic one that was central when the get
// began). tune_stats()' promotions, demotions and sweeps must match the
// transitions seen and the sweeps done. Sweeps run on the driving thread
// (one sweeper: sweeps of one object never overlap).
//
// Input layout, in the order the fields are consumed (FuzzedDataProvider's
// ConsumeIntegral: from the end of the input backwards, fuzz_common.hpp):
// 2 header bytes (h0: max_slots 1..4, table_entries 1/2/4/8, probe 1..3,
// slot mode spill/thread/cpu from bits 6-7 (3 is spill too; with four
// workers and fewer slots, spill puts some of them on the CPU tables);
// h1: local_limit 1..4, promote_events 1..4, demote_sweeps 1..3,
// inhibit_ms 0 or 999; group_size is always 1, promote_window_us 10 s),
// then 2 bytes per op:
//   op byte: kind = op & 15, thread = (op >> 4) & 3;  arg byte.
// PAYGO_FUZZ_TRACE=1 prints each input's trace: the ops and the model after each.
#include <array>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "fuzz_common.hpp"
#include "paygo/paygo_counter.hpp"

namespace {

using paygo::Paygo;
using paygo::fuzz::fail;

/// A thread that runs the closures it is handed, one at a time; run() waits
/// until the closure has finished.
class Worker {
 public:
  Worker() : thread_([this] { loop(); }) {}
  ~Worker() {
    {
      std::lock_guard lock(mu_);
      quit_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  void run(std::function<void()> fn) {
    std::unique_lock lock(mu_);
    task_ = std::move(fn);
    done_ = false;
    cv_.notify_all();
    cv_.wait(lock, [&] { return done_; });
  }

 private:
  void loop() {
    std::unique_lock lock(mu_);
    for (;;) {
      cv_.wait(lock, [&] { return quit_ || task_ != nullptr; });
      if (task_ != nullptr) {
        auto fn = std::move(task_);
        task_ = nullptr;
        fn();
        done_ = true;
        cv_.notify_all();
        continue;
      }
      if (quit_) return;
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::function<void()> task_;
  bool done_ = false;
  bool quit_ = false;
  std::thread thread_;  // last: starts after the members above exist
};

constexpr int kThreads = 4;
constexpr int kObjects = 4;
constexpr std::size_t kMaxTokens = 48;
constexpr int kMaxOps = 400;

using paygo::Mode;
using paygo::SlotMode;

const char* mode_name(Mode m) {
  switch (m) {
    case Mode::Distributed:
      return "pinned distributed";
    case Mode::Central:
      return "pinned central";
    default:
      return "automatic";
  }
}

struct ModelObj {
  std::int64_t count = 0;  // live tokens
  bool frozen = false;     // frozen by a try_freeze of the harness
  bool dead = false;
  Mode mode = Mode::Auto;  // what the harness set (Auto: self-tuning)
  bool dist = false;       // distributed() as last seen (exact when pinned)
};

/// What the current step may do to the DISTRIBUTED bit of an automatic
/// object (the model's allowed transitions).
enum : std::uint8_t {
  kMayPromote = 1,   // a central get of this step: false -> true
  kMayDemote = 2,    // a sweep of this step: true -> false
  kMustCentral = 4,  // set_mode(Auto) / reset(): false afterwards
};

struct Tok {
  Paygo::Token token;
  int obj;
  int getter;  // the worker index that took it
};

struct Trace {
  std::vector<std::string> lines;
  void add(std::string s) { lines.push_back(std::move(s)); }
  void print() const {
    std::fprintf(stderr, "paygo_fuzz: trace (%zu lines):\n", lines.size());
    for (const auto& l : lines) std::fprintf(stderr, "  %s\n", l.c_str());
  }
  [[noreturn]] void fail_with(const std::string& what) const {
    print();
    fail(what.c_str());
  }
};

struct Harness {
  explicit Harness(const Paygo::Options& o) : counter(o) {
    for (auto& w : workers) w = std::make_unique<Worker>();
  }
  ~Harness() {
    // Tokens must not outlive the counter; put them from the main thread.
    tokens.clear();
    for (auto& w : workers) w.reset();
  }

  Paygo counter;
  std::array<Paygo::Object, kObjects> objs{};
  std::array<ModelObj, kObjects> model{};
  std::vector<Tok> tokens;
  std::array<std::unique_ptr<Worker>, kThreads> workers;
  Trace trace;
  std::array<std::uint8_t, kObjects> allow{};  // this step's transitions
  std::uint64_t sweeps = 0;                    // sweep() calls made
  std::uint64_t step_demoted = 0;              // what this step's sweeps returned
  paygo::TuneStats last{};                     // tune_stats() after the last step

  std::int64_t central_tokens(int o) const {
    std::int64_t n = 0;
    for (const auto& t : tokens) n += (t.obj == o && !t.token.distributed()) ? 1 : 0;
    return n;
  }

  void get(int th, int o) {
    ModelObj& m = model[o];
    // Sequential: exact, the mode this get starts from.
    const bool dist_before = counter.distributed(objs[o]);
    Paygo::Token t;
    workers[th]->run([&] { t = counter.get(objs[o]); });
    const bool expect = !m.frozen && !m.dead;
    if (static_cast<bool>(t) != expect) {
      trace.fail_with("get on object " + std::to_string(o) + (expect ? " failed" : " succeeded") +
                      " (frozen " + std::to_string(m.frozen) + ", dead " + std::to_string(m.dead) +
                      ")");
    }
    if (!t) return;
    if (t.distributed() && m.mode == Mode::Central) {
      trace.fail_with("pinned-central object " + std::to_string(o) + " got a distributed token");
    }
    if (t.distributed() && !dist_before) {
      trace.fail_with(std::string(mode_name(m.mode)) + " object " + std::to_string(o) +
                      " got a distributed token while central (not promoted)");
    }
    // Only a central get of an automatic object records contention.
    if (!t.distributed() && m.mode == Mode::Auto) allow[o] |= kMayPromote;
    ++m.count;
    if (tokens.size() >= kMaxTokens) {
      put_at(0, th);
    }
    tokens.push_back(Tok{std::move(t), o, th});
  }

  void put_at(std::size_t i, int th) {
    Tok tok = std::move(tokens[i]);
    tokens.erase(tokens.begin() + static_cast<std::ptrdiff_t>(i));
    workers[th]->run([&] { counter.put(std::move(tok.token)); });
    --model[tok.obj].count;
  }

  void exit_thread(int th) {
    workers[th].reset();  // the thread exits: its slot is retired
    workers[th] = std::make_unique<Worker>();
  }

  bool expect_reclaim(int o) const {
    const ModelObj& m = model[o];
    return !m.frozen && !m.dead && m.count == 0;
  }

  void on_reclaim(int o, bool got, const char* how) {
    const bool expect = expect_reclaim(o);
    if (got != expect) {
      trace.fail_with(std::string(how) + " of object " + std::to_string(o) + " returned " +
                      (got ? "true" : "false") + " with " + std::to_string(model[o].count) +
                      " live tokens (frozen " + std::to_string(model[o].frozen) + ", dead " +
                      std::to_string(model[o].dead) + ")");
    }
    if (got) model[o].dead = true;
  }

  // After every step: the counter agrees with the model.
  void check() {
    std::uint64_t promoted = 0, demoted = 0;
    for (int o = 0; o < kObjects; ++o) {
      ModelObj& m = model[o];
      if (counter.frozen(objs[o]) != (m.frozen || m.dead)) {
        trace.fail_with("object " + std::to_string(o) + ": frozen() disagrees with the model");
      }
      if (counter.mode(objs[o]) != m.mode) {
        trace.fail_with("object " + std::to_string(o) + ": mode() is " +
                        mode_name(counter.mode(objs[o])) + ", the model says " + mode_name(m.mode));
      }
      const bool d = counter.distributed(objs[o]);
      if (m.mode != Mode::Auto) {
        if (d != (m.mode == Mode::Distributed)) {
          trace.fail_with("object " + std::to_string(o) + " (" + mode_name(m.mode) +
                          "): distributed() disagrees");
        }
      } else if ((allow[o] & kMustCentral) && d) {
        trace.fail_with("automatic object " + std::to_string(o) +
                        " still distributed after set_mode(Auto) or reset()");
      } else if (d && !m.dist && !(allow[o] & kMayPromote)) {
        trace.fail_with("automatic object " + std::to_string(o) +
                        " became distributed without a central get");
      } else if (!d && m.dist && !(allow[o] & (kMayDemote | kMustCentral))) {
        trace.fail_with("automatic object " + std::to_string(o) +
                        " became central without a sweep, set_mode(Auto) or reset()");
      } else {
        promoted += (d && !m.dist) ? 1 : 0;
        demoted += (!d && m.dist && (allow[o] & kMayDemote)) ? 1 : 0;
      }
      m.dist = d;
      allow[o] = 0;
      if (m.dead) continue;
      // Nothing runs concurrently, so both are exact here; query() is the
      // contract's exact answer while frozen.
      const std::int64_t q = m.frozen ? counter.query(objs[o]) : counter.approx(objs[o]);
      if (q != m.count) {
        trace.fail_with("object " + std::to_string(o) + (m.frozen ? ": query " : ": approx ") +
                        std::to_string(q) + " != live tokens " + std::to_string(m.count));
      }
    }
    // The statistics: each promotion and demotion is one transition seen
    // here (a sweep's demotion clears DISTRIBUTED of an automatic object;
    // set_mode(Auto) and reset() are not demotions), sweeps are ours.
    const paygo::TuneStats now = counter.tune_stats();
    if (now.promotions - last.promotions != promoted) {
      trace.fail_with("tune_stats().promotions grew by " +
                      std::to_string(now.promotions - last.promotions) + "; " +
                      std::to_string(promoted) + " objects became distributed");
    }
    if (now.demotions - last.demotions != step_demoted || step_demoted != demoted) {
      trace.fail_with("tune_stats().demotions grew by " +
                      std::to_string(now.demotions - last.demotions) + ", sweep() returned " +
                      std::to_string(step_demoted) + ", " + std::to_string(demoted) +
                      " objects became central in sweeps");
    }
    if (now.sweeps != sweeps) trace.fail_with("tune_stats().sweeps != sweep() calls");
    if (paygo::fuzz::trace_enabled()) trace_state(now);
    last = now;
    step_demoted = 0;
  }

  // With PAYGO_FUZZ_TRACE: the model after the step, one line (per object:
  // live tokens, of which central, F(rozen) D(ead), the mode, d(istributed)
  // or c(entral)) and the self-tuning counts so far.
  void trace_state(const paygo::TuneStats& now) {
    std::string s = "  ->";
    for (int o = 0; o < kObjects; ++o) {
      const ModelObj& m = model[o];
      s += " o" + std::to_string(o) + "[" + std::to_string(m.count) + "/" +
           std::to_string(central_tokens(o)) + "c" + (m.frozen ? " F" : "") + (m.dead ? " D" : "") +
           (m.mode == Mode::Auto          ? " auto"
            : m.mode == Mode::Distributed ? " pin-d"
                                          : " pin-c") +
           (m.dist ? " d" : " c") + "]";
    }
    s += " promotions " + std::to_string(now.promotions) + " demotions " +
         std::to_string(now.demotions) + " sweeps " + std::to_string(now.sweeps);
    trace.add(std::move(s));
  }

  void set_mode(int th, int o, Mode mode, bool hint) {
    workers[th]->run([&] {
      if (hint && mode != Mode::Auto) {
        counter.set_distributed(objs[o], mode == Mode::Distributed);
      } else {
        counter.set_mode(objs[o], mode);
      }
    });
    model[o].mode = mode;
    if (mode == Mode::Auto) allow[o] |= kMustCentral;
  }

  void step(std::uint8_t op, std::uint8_t arg) {
    const int kind = op & 15;
    const int th = (op >> 4) & 3;
    const int o = arg % kObjects;
    trace.add("op " + std::to_string(kind) + " thread " + std::to_string(th) + " arg " +
              std::to_string(arg));
    switch (kind) {
      case 0:
      case 1:
        get(th, o);
        break;
      case 2:  // a burst of gets: local_limit, window-full and central fallbacks
        for (int k = 0; k <= arg % 6; ++k) get(th, o);
        break;
      case 3:  // put on the thread that took it (home put if it still owns the slot)
        if (!tokens.empty()) {
          const std::size_t i = arg % tokens.size();
          put_at(i, tokens[i].getter);
        }
        break;
      case 4:  // put from the named thread (the migration tax if not home)
        if (!tokens.empty()) put_at(arg % tokens.size(), th);
        break;
      case 5:
        exit_thread(th);
        break;
      case 6: {
        ModelObj& m = model[o];
        bool got = false;
        workers[th]->run([&] { got = counter.try_freeze(objs[o]); });
        const bool expect = !m.frozen && !m.dead && central_tokens(o) == 0;
        if (got != expect) {
          trace.fail_with("try_freeze of object " + std::to_string(o) + " returned " +
                          std::to_string(got) + ", expected " + std::to_string(expect));
        }
        if (got) m.frozen = true;
        break;
      }
      case 7: {
        ModelObj& m = model[o];
        if (m.frozen && !m.dead) {
          workers[th]->run([&] { counter.unfreeze(objs[o]); });
          m.frozen = false;
        }
        break;
      }
      case 8: {
        bool got = false;
        workers[th]->run([&] { got = counter.try_reclaim(objs[o]); });
        on_reclaim(o, got, "try_reclaim");
        break;
      }
      case 9: {  // reclaim_batch over the objects in arg's low bits
        std::vector<Paygo::Object*> batch;
        std::vector<int> idx;
        for (int k = 0; k < kObjects; ++k) {
          if ((arg >> k) & 1) {
            batch.push_back(&objs[k]);
            idx.push_back(k);
          }
        }
        std::unique_ptr<bool[]> dead(new bool[batch.size() + 1]);
        std::size_t n = 0;
        workers[th]->run(
            [&] { n = counter.reclaim_batch(batch, std::span<bool>(dead.get(), batch.size())); });
        std::size_t expect_n = 0;
        for (std::size_t k = 0; k < batch.size(); ++k) {
          expect_n += dead[k] ? 1 : 0;
          on_reclaim(idx[k], dead[k], "reclaim_batch");
        }
        if (n != expect_n) trace.fail_with("reclaim_batch's count != its dead flags");
        break;
      }
      case 10: {
        ModelObj& m = model[o];
        if (m.dead) {  // reset() only on a dead object (its precondition)
          workers[th]->run([&] { counter.reset(objs[o]); });
          m.dead = false;
          m.frozen = false;
          m.count = 0;
          allow[o] |= kMustCentral;  // automatic: central again (pinned: kept)
        }
        break;
      }
      case 11:  // pin: the hint (set_distributed) or set_mode, by arg's bit 7
      case 12:
        set_mode(th, o, kind == 11 ? Mode::Distributed : Mode::Central, (arg & 0x80) == 0);
        break;
      case 14:  // hand the object back to self-tuning
        set_mode(th, o, Mode::Auto, false);
        break;
      case 15: {  // 1-4 sweeps over the objects in arg's low bits (0: all), here
        std::vector<Paygo::Object*> batch;
        for (int k = 0; k < kObjects; ++k) {
          if ((arg & 15) == 0 || ((arg >> k) & 1)) {
            batch.push_back(&objs[k]);
            allow[k] |= kMayDemote;
          }
        }
        for (int r = 0; r <= (arg >> 4) % 4; ++r) {
          const std::size_t n = counter.sweep(batch);
          ++sweeps;
          if (n > batch.size()) trace.fail_with("sweep() returned more than its objects");
          step_demoted += n;
        }
        break;
      }
      case 13:  // put everything of one object from the named thread
        for (std::size_t i = tokens.size(); i-- > 0;) {
          if (tokens[i].obj == o) put_at(i, th);
        }
        break;
      default:
        break;
    }
    check();
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider in(data, size);
  const auto h0 = in.ConsumeIntegral<std::uint8_t>();
  const auto h1 = in.ConsumeIntegral<std::uint8_t>();
  Paygo::Options o;
  o.max_slots = 1 + h0 % 4;
  o.table_entries = 1U << ((h0 >> 2) % 4);
  o.probe = 1 + (h0 >> 4) % 3;
  o.local_limit = 1 + h1 % 4;
  o.promote_events = 1 + (h1 >> 2) % 4;
  o.demote_sweeps = 1 + (h1 >> 4) % 3;
  o.inhibit_ms = (h1 & 0x40) != 0 ? 999 : 0;
  // Long enough that the outcome does not depend on timing (within one
  // input); the model allows either outcome anyway.
  o.promote_window_us = 10'000'000;
  o.group_size = 1;
  constexpr SlotMode kModes[] = {SlotMode::Spill, SlotMode::Thread, SlotMode::Cpu, SlotMode::Spill};
  o.slot_mode = kModes[h0 >> 6];
  Harness h(o);
  h.trace.add("options: slot_mode " + std::string(paygo::to_string(o.slot_mode)) + ", max_slots " +
              std::to_string(o.max_slots) + ", table_entries " + std::to_string(o.table_entries) +
              ", probe " + std::to_string(o.probe) + ", local_limit " +
              std::to_string(o.local_limit) + ", promote_events " +
              std::to_string(o.promote_events) + ", demote_sweeps " +
              std::to_string(o.demote_sweeps) + ", inhibit_ms " + std::to_string(o.inhibit_ms));
  for (int n = 0; n < kMaxOps && in.remaining_bytes() != 0; ++n) {
    const auto op = in.ConsumeIntegral<std::uint8_t>();
    const auto arg = in.ConsumeIntegral<std::uint8_t>();
    h.step(op, arg);
  }
  // Put everything (from worker 0), then every live object must be reclaimable.
  while (!h.tokens.empty()) h.put_at(h.tokens.size() - 1, 0);
  h.check();
  for (int k = 0; k < kObjects; ++k) {
    if (h.model[k].frozen && !h.model[k].dead) {
      h.counter.unfreeze(h.objs[k]);
      h.model[k].frozen = false;
    }
    if (!h.model[k].dead) h.on_reclaim(k, h.counter.try_reclaim(h.objs[k]), "final try_reclaim");
  }
  if (paygo::fuzz::trace_enabled()) h.trace.print();
  return 0;
}
