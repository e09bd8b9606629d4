// bench/main.cpp — paygo-bench: one binary, one subcommand per experiment.
//
//   paygo-bench micro      the counters alone (bench/micro.cpp)
//   paygo-bench counting   fxmark DRBL/DRBM/DRBH over the page cache (bench/counting.cpp)
//   paygo-bench query      drop time vs the hot fraction (bench/query.cpp)
//   paygo-bench rocksdb    a RocksDB database's readrandom per block cache (bench/rocksdb.cpp)
//   paygo-bench counters   the names of the counters it was built with
//   paygo-bench machine    the machine block of the JSON files, alone
//
// Exit codes: 0 ok, 1 a measurement failed, 2 bad arguments.
#include <fmt/core.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>
#include <vector>

#include "commands.hpp"
#include "common.hpp"

int main(int argc, char** argv) {
  using namespace paygo::bench;
  CLI::App app{
      "paygo-bench: benchmarks of paygo's reference counters.\n"
      "Every subcommand writes JSON/CSV in one schema (bench/README.md) with the machine and "
      "commit."};
  app.require_subcommand(1);
  // A repeated option takes the last value, so wrappers can append overrides
  // (make eval BENCH_ARGS="--duration 1").
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);

  std::vector<Subcommand> commands;
  commands.push_back(add_micro_command(app));
  commands.push_back(add_counting_command(app));
  commands.push_back(add_query_command(app));
  commands.push_back(add_rocksdb_command(app));

  CLI::App* list = app.add_subcommand("counters", "Print the counter names, one per line");
  commands.push_back({list, [] {
                        for (const auto& name : all_counter_names()) fmt::print("{}\n", name);
                        return 0;
                      }});
  CLI::App* machine = app.add_subcommand(
      "machine",
      "Print the machine and build as JSON: the \"machine\" object of every --json file "
      "(cpu_model, cores, kernel, compiler, git_commit, date, membarrier, ...)");
  commands.push_back({machine, [] {
                        fmt::print("{}\n", machine_info().dump(2));
                        return 0;
                      }});

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);  // prints help (stdout) or the error (stderr)
    return rc == 0 ? 0 : 2;
  }
  try {
    for (const auto& c : commands) {
      if (c.app->parsed()) return c.run();
    }
    return 2;  // unreachable: require_subcommand(1)
  } catch (const UsageError& e) {
    fmt::print(stderr, "paygo-bench: error: {}\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    fmt::print(stderr, "paygo-bench: failed: {}\n", e.what());
    return 1;
  }
}
