// libFuzzer harness for paygo::Paygo (docs/verification.md, "Fuzzing").
//
// The input is a header (counter options) and a sequence of operations, each
// executed by one of four worker threads that the harness drives one at a
// time (a hand-off through a mutex and condition variable), so a given input
// always runs the same way. Thread exits (slot retirement) and fresh threads
// (adoption) are operations too. After every operation the counter is
// compared with a reference model: the exact number of live tokens of each
// object, which objects are frozen or dead, and which tokens are central.
//
// Input layout: 2 header bytes (max_slots 1..4, table_entries 1/2/4/8, probe
// 1..3, local_limit 1..4; group_size is always 1), then 2 bytes per op:
//   op byte: kind = op % 14, thread = (op >> 4) & 3;  arg byte.
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
#include "paygo/counters/paygo.hpp"

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

struct ModelObj {
  std::int64_t count = 0;  // live tokens
  bool frozen = false;     // frozen by a try_freeze of the harness
  bool dead = false;
  bool hot = false;
};

struct Tok {
  Paygo::Token token;
  int obj;
  int getter;  // the worker index that took it
};

struct Trace {
  std::vector<std::string> lines;
  void add(std::string s) { lines.push_back(std::move(s)); }
  [[noreturn]] void fail_with(const std::string& what) const {
    std::fprintf(stderr, "paygo_fuzz: trace (%zu ops):\n", lines.size());
    for (const auto& l : lines) std::fprintf(stderr, "  %s\n", l.c_str());
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

  std::int64_t central_tokens(int o) const {
    std::int64_t n = 0;
    for (const auto& t : tokens) n += (t.obj == o && !t.token.distributed()) ? 1 : 0;
    return n;
  }

  void get(int th, int o) {
    ModelObj& m = model[o];
    Paygo::Token t;
    workers[th]->run([&] { t = counter.get(objs[o]); });
    const bool expect = !m.frozen && !m.dead;
    if (static_cast<bool>(t) != expect) {
      trace.fail_with("get on object " + std::to_string(o) + (expect ? " failed" : " succeeded") +
                      " (frozen " + std::to_string(m.frozen) + ", dead " + std::to_string(m.dead) +
                      ")");
    }
    if (!t) return;
    if (!m.hot && t.distributed()) trace.fail_with("cold object got a distributed token");
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
    for (int o = 0; o < kObjects; ++o) {
      const ModelObj& m = model[o];
      if (counter.frozen(objs[o]) != (m.frozen || m.dead)) {
        trace.fail_with("object " + std::to_string(o) + ": frozen() disagrees with the model");
      }
      if (counter.distributed(objs[o]) != m.hot) {
        trace.fail_with("object " + std::to_string(o) + ": distributed() disagrees");
      }
      if (m.dead) continue;
      // Nothing runs concurrently, so both are exact here; query() is the
      // contract's exact answer while frozen.
      const std::int64_t q = m.frozen ? counter.query(objs[o]) : counter.approx(objs[o]);
      if (q != m.count) {
        trace.fail_with("object " + std::to_string(o) + (m.frozen ? ": query " : ": approx ") +
                        std::to_string(q) + " != live tokens " + std::to_string(m.count));
      }
    }
  }

  void step(std::uint8_t op, std::uint8_t arg) {
    const int kind = op % 14;
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
        }
        break;
      }
      case 11:
      case 12: {
        const bool on = kind == 11;
        workers[th]->run([&] { counter.set_distributed(objs[o], on); });
        model[o].hot = on;
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
  paygo::fuzz::Input in(data, size);
  const std::uint8_t h0 = in.u8();
  const std::uint8_t h1 = in.u8();
  Paygo::Options o;
  o.max_slots = 1 + h0 % 4;
  o.table_entries = 1U << ((h0 >> 2) % 4);
  o.probe = 1 + (h0 >> 4) % 3;
  o.local_limit = 1 + h1 % 4;
  o.group_size = 1;
  Harness h(o);
  h.trace.add("options: max_slots " + std::to_string(o.max_slots) + ", table_entries " +
              std::to_string(o.table_entries) + ", probe " + std::to_string(o.probe) +
              ", local_limit " + std::to_string(o.local_limit));
  for (int n = 0; n < kMaxOps && !in.empty(); ++n) {
    const std::uint8_t op = in.u8();
    const std::uint8_t arg = in.u8();
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
  return 0;
}
