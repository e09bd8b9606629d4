// bench/rocksdb_caches.cpp — the RocksDB block caches of counting and rocksdb.
#include "rocksdb_caches.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "common.hpp"
#include "paygo/rocksdb/paygo_cache.hpp"

namespace paygo::bench {

const std::vector<std::string>& rocksdb_cache_names() {
  static const std::vector<std::string> names = {"rocksdb-lru", "rocksdb-hcc", "rocksdb-paygo"};
  return names;
}

std::shared_ptr<::rocksdb::Cache> make_rocksdb_cache(std::string_view name, std::size_t capacity,
                                                     std::size_t block_bytes) {
  std::shared_ptr<::rocksdb::Cache> cache;
  if (name == "rocksdb-lru") {
    cache = ::rocksdb::NewLRUCache(capacity);
  } else if (name == "rocksdb-hcc") {
    cache = ::rocksdb::HyperClockCacheOptions(capacity, block_bytes).MakeSharedCache();
  } else if (name == "rocksdb-paygo") {
    rocksdb::PaygoCacheOptions options;  // paygo::rocksdb
    options.capacity = capacity;
    cache = rocksdb::NewPaygoCache(options);
  } else {
    throw PointFailed(fmt::format("no RocksDB cache named '{}'", name));
  }
  if (!cache) throw PointFailed(fmt::format("{}: no cache made", name));
  return cache;
}

namespace {
/// The entries in `cache`, counted one by one: RocksDB 7.8's
/// Cache::GetOccupancyCount() sums the shards' pinned usage instead
/// (sharded_cache.h), so it cannot be used.
std::size_t count_entries(::rocksdb::Cache& cache) {
  std::size_t n = 0;
  cache.ApplyToAllEntries(
      [&n](const ::rocksdb::Slice&, void*, std::size_t, ::rocksdb::Cache::DeleterFn) { ++n; }, {});
  return n;
}

/// Table bytes per entry: `slot_bytes` x GetTableAddressCount() over
/// `entries`; null where the cache does not say.
std::optional<double> table_per_entry(const ::rocksdb::Cache& cache, std::size_t slot_bytes,
                                      std::size_t entries) {
  const std::size_t slots = cache.GetTableAddressCount();
  if (entries == 0 || slots == 0) return std::nullopt;
  return static_cast<double>(slot_bytes * slots) / static_cast<double>(entries);
}

/// What RocksDB charges for one LRU handle and its 16-byte key under
/// kFullChargeCacheMetadata: the usage of one zero-charge entry.
std::size_t lru_handle_bytes() {
  ::rocksdb::LRUCacheOptions o;
  o.capacity = 1 << 20;
  o.num_shard_bits = 0;
  o.metadata_charge_policy = ::rocksdb::kFullChargeCacheMetadata;
  const std::shared_ptr<::rocksdb::Cache> probe = ::rocksdb::NewLRUCache(o);
  const char key[16] = {};
  const ::rocksdb::Status st = probe->Insert(::rocksdb::Slice(key, sizeof key), nullptr, 0,
                                             [](const ::rocksdb::Slice&, void*) {});
  return st.ok() ? probe->GetUsage() : 0;
}
}  // namespace

CacheMetadata rocksdb_cache_metadata(std::string_view name, ::rocksdb::Cache& cache,
                                     std::size_t block_bytes) {
  CacheMetadata m;
  m.entries = count_entries(cache);
  if (name == "rocksdb-lru") {
    const std::size_t handle = lru_handle_bytes();
    const std::optional<double> table = table_per_entry(cache, sizeof(void*), m.entries);
    if (handle != 0 && table) m.bytes_per_entry = static_cast<double>(handle) + *table;
    m.how = fmt::format(
        "handle + 16-byte key as RocksDB charges it (kFullChargeCacheMetadata probe: {} B) "
        "+ 8-byte bucket pointers x {} buckets / entries",
        handle, cache.GetTableAddressCount());
  } else if (name == "rocksdb-hcc") {
    m.bytes_per_entry = table_per_entry(cache, 64, m.entries);
    // A full cache holds about capacity / estimated_entry_charge entries.
    const std::size_t full = std::max<std::size_t>(1, cache.GetCapacity() / block_bytes);
    m.how = fmt::format(
        "64-byte handles x {} table slots (sized from capacity / estimated_entry_charge) / "
        "entries; a full cache ({} entries of {} bytes): {:.1f} B",
        cache.GetTableAddressCount(), full, block_bytes,
        table_per_entry(cache, 64, full).value_or(0));
  } else if (name == "rocksdb-paygo") {
    if (const auto stats = rocksdb::GetPaygoCacheStats(cache)) {
      m.entries = static_cast<std::size_t>(stats->entries);
      const std::optional<double> table = table_per_entry(cache, sizeof(void*), m.entries);
      m.bytes_per_entry = static_cast<double>(stats->metadata_bytes_per_entry) + table.value_or(0);
      m.how = fmt::format(
          "entry (PaygoCacheStats::metadata_bytes_per_entry: {} B) + 8-byte table slots x {} "
          "slots / entries; besides, PAYGO's slot tables: {} bytes (table_bytes), {} of the "
          "entries distributed",
          stats->metadata_bytes_per_entry, cache.GetTableAddressCount(), stats->table_bytes,
          stats->distributed);
    } else {
      m.how = "GetPaygoCacheStats gave nothing (not a PAYGO cache)";
    }
  }
  return m;
}

}  // namespace paygo::bench
