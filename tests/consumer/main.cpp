// The installed-package check: builds against an installed paygo through
// find_package(paygo), takes and releases references, and reclaims.
// Exit code 0 on success, 1 with a message otherwise.
#include <cstdio>
#include <paygo/paygo.hpp>
#include <thread>

namespace {
int failures = 0;
void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "paygo-consumer: FAIL: %s\n", what);
    ++failures;
  }
}
}  // namespace

int main() {
  paygo::Paygo counter;
  paygo::Paygo::Object obj{counter};
  counter.set_distributed(obj, true);

  paygo::Paygo::Token held = counter.get(obj);
  check(static_cast<bool>(held), "get on a live object returned no token");
  check(!counter.try_reclaim(obj), "try_reclaim succeeded while a reference was held");

  // A put from another thread (the migration path) must count too.
  std::thread([&] { counter.put(std::move(held)); }).join();
  check(!held, "the token still holds a reference after put");

  check(counter.try_reclaim(obj), "try_reclaim failed with no reference held");
  check(!counter.get(obj), "get succeeded on a reclaimed object");

  counter.reset(obj);
  paygo::Paygo::Token again = counter.get(obj);
  check(static_cast<bool>(again), "get failed after reset()");
  again.reset();
  check(counter.try_reclaim(obj), "try_reclaim failed after reset and release");

  if (failures == 0)
    std::printf("paygo-consumer: ok (membarrier %s)\n",
                paygo::membarrier_in_use() ? "in use" : "not in use");
  return failures == 0 ? 0 : 1;
}
