// bench/commands.hpp — the subcommands of paygo-bench. Each adds itself to
// the CLI and hands back what to run if the user picked it; main() does the
// parsing and turns UsageError into exit code 2.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace paygo::bench {

struct Subcommand {
  CLI::App* app;             ///< the CLI11 subcommand (app->parsed() if chosen)
  std::function<int()> run;  ///< the exit code; may throw UsageError
};

/// `micro`: get/put throughput on one hot object, and the cost of a query.
Subcommand add_micro_command(CLI::App& app);
/// `counting`: fxmark DRBL/DRBM/DRBH over paygo's page cache and pread.
Subcommand add_counting_command(CLI::App& app);
/// `query`: the time to drop a cached file vs its hot fraction.
Subcommand add_query_command(CLI::App& app);
/// `rocksdb`: a RocksDB database's readrandom through each block cache.
Subcommand add_rocksdb_command(CLI::App& app);

}  // namespace paygo::bench
