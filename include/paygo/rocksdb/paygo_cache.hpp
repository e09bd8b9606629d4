// paygo/rocksdb/paygo_cache.hpp — a RocksDB block cache (rocksdb::Cache,
// RocksDB 7.8) whose pins are PAYGO gets and puts.
//
// Use
// ---
//   #include <paygo/rocksdb/paygo_cache.hpp>
//   rocksdb::BlockBasedTableOptions t;
//   t.block_cache = paygo::rocksdb::NewPaygoCache({.capacity = 1 << 30});
//
// Link paygo::rocksdb (shared) or paygo::rocksdb_static (CMake): either
// brings RocksDB and the core (libpaygo.a, linked into the program once;
// the shared library uses the program's copy).
//
// Contract
// --------
// The whole rocksdb::Cache contract of 7.8.3, as LRUCache keeps it where
// LRUCache and HyperClockCache differ: any key (any length, copied), a null
// value or deleter accepted (RocksDB's dummy entries), overwrite returns
// OkOverwritten and the old entry lives until its handles are released,
// Erase() and Release(h, true) free an entry exactly when its last reference
// goes (never earlier; the deleter runs on the thread that released last),
// a strict capacity limit makes a full Insert fail with Status::MemoryLimit
// (without a handle, a full cache accepts the entry and drops it, as LRU
// does), and a release of the last reference while over capacity frees the
// entry. Handles may be released, Ref()'d and read from any thread.
//
// How it counts: each entry carries a paygo::Paygo object. A Lookup is a
// get; the handle is the token in one word (Paygo::into_raw): the address of
// the getter's table entry for a distributed get (a release is at home when
// that entry is in the releaser's own table), the entry's word tagged for a
// central one. A
// hit of a distributed entry writes nothing shared: no allocation, no
// atomic read-modify-write, no store to a line another core reads. Entries
// start central (self-tuning promotes the ones many threads hold at once);
// Priority::HIGH ones (RocksDB's index and filter blocks) start distributed
// when Options::high_priority_distributed says so. Eviction is CLOCK per
// shard, with one batch freeze/query (Paygo::reclaim_batch) per pass.
// docs/rocksdb.md has the design and the correctness argument.
//
// When not to use: a cache whose entries are rarely shared between threads
// gains nothing over HyperClockCache and pays a query (a heavy fence and a
// scan) per eviction pass that holds a distributed entry.
#pragma once

#include <rocksdb/cache.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>

#include "paygo/paygo_counter.hpp"

namespace paygo::rocksdb {

struct PaygoCacheOptions {
  /// Bytes of charge the cache may hold (RocksDB's capacity).
  std::size_t capacity = 8 << 20;
  /// Insert fails with MemoryLimit instead of exceeding the capacity.
  bool strict_capacity_limit = false;
  /// Shards: 2^num_shard_bits; -1 picks as LRUCache does (one per 512 KiB of
  /// capacity, at most 64).
  int num_shard_bits = -1;
  /// As RocksDB's: kFullChargeCacheMetadata counts each entry's metadata
  /// (PaygoCacheStats::metadata_bytes_per_entry) in its charge.
  ::rocksdb::CacheMetadataChargePolicy metadata_charge_policy =
      ::rocksdb::kDefaultCacheMetadataChargePolicy;
  /// Given to rocksdb::Cache (RocksDB allocates block contents with it).
  std::shared_ptr<::rocksdb::MemoryAllocator> memory_allocator{};
  /// The counter: slot tables and the self-tuning policy (PaygoOptions).
  PaygoOptions counter{};
  /// Entries inserted with Priority::HIGH start pinned distributed.
  bool high_priority_distributed = true;
  /// A shard runs a self-tuning sweep (demotion of cooled entries) every
  /// this many inserts; 0: never.
  std::uint32_t sweep_interval = 256;
};

/// The factory: a cache for BlockBasedTableOptions::block_cache. Throws
/// std::invalid_argument for options it cannot honour (num_shard_bits >= 20).
std::shared_ptr<::rocksdb::Cache> NewPaygoCache(const PaygoCacheOptions& options = {});

struct PaygoCacheStats {
  std::uint64_t entries = 0;                 ///< entries in the table now
  std::uint64_t distributed = 0;             ///< of which counted distributed now
  std::uint64_t evictions = 0;               ///< entries freed by CLOCK
  std::uint64_t reclaim_passes = 0;          ///< batch freeze/query passes
  std::size_t metadata_bytes_per_entry = 0;  ///< the cache's own bytes per entry
  std::size_t table_bytes = 0;               ///< PAYGO's slot tables (Paygo::table_bytes)
  TuneStats tune{};                          ///< promotions, demotions, sweeps, fallbacks
};

/// Statistics of a cache made by NewPaygoCache; nullopt for any other cache.
std::optional<PaygoCacheStats> GetPaygoCacheStats(const ::rocksdb::Cache& cache);

namespace detail {
/// paygo::detail::core_instance() and detail::this_thread_tag() (the
/// calling thread's cache) as this library sees them (tests: one copy of
/// the core per process).
const void* core_instance_in_library() noexcept;
const void* thread_tag_in_library() noexcept;
}  // namespace detail

}  // namespace paygo::rocksdb
