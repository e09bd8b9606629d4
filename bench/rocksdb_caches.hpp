// bench/rocksdb_caches.hpp — the RocksDB block caches paygo-bench compares,
// made alike by `counting --io rocksdb-*` and the `rocksdb` subcommand:
//   rocksdb-lru    rocksdb::NewLRUCache(capacity)
//   rocksdb-hcc    rocksdb::HyperClockCacheOptions(capacity, block size)
//   rocksdb-paygo  paygo::rocksdb::NewPaygoCache({.capacity = capacity})
// Each with its default sharding and kDefaultCacheMetadataChargePolicy.
//
// Inside namespace paygo, `rocksdb` is paygo::rocksdb (the PAYGO cache's
// namespace): RocksDB's own names are written ::rocksdb:: throughout bench/.
#pragma once

#include <rocksdb/cache.h>

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace paygo::bench {

/// "rocksdb-lru", "rocksdb-hcc", "rocksdb-paygo" (the io names, this order).
const std::vector<std::string>& rocksdb_cache_names();

/// A fresh cache named by rocksdb_cache_names() of `capacity` bytes.
/// `block_bytes`: HyperClockCache's estimated_entry_charge (the block size:
/// RocksDB's recommendation; exact for counting's 4 KiB blocks). Throws
/// PointFailed if RocksDB (or PAYGO) gives no cache.
std::shared_ptr<::rocksdb::Cache> make_rocksdb_cache(std::string_view name, std::size_t capacity,
                                                     std::size_t block_bytes);

/// The block cache's own bytes per entry (its metadata), read from a cache
/// in use: what can be had cheaply and how it was had.
struct CacheMetadata {
  std::optional<double> bytes_per_entry;  ///< null where not available
  std::size_t entries = 0;                ///< entries in the cache when read
  std::string how;                        ///< what the number is, for humans
};
/// The entries are counted with ApplyToAllEntries. rocksdb-lru: the charge
/// RocksDB gives a handle with its 16-byte key under kFullChargeCacheMetadata
/// (one probe entry in a separate cache), plus its hash tables' 8-byte bucket
/// pointers (GetTableAddressCount) over the entries. rocksdb-hcc: its 64-byte
/// handles, the whole table (GetTableAddressCount slots, sized from capacity
/// / estimated_entry_charge), over the entries. rocksdb-paygo:
/// PaygoCacheStats::metadata_bytes_per_entry (the counter's slot tables,
/// table_bytes, in `how`).
/// `block_bytes`: as given to make_rocksdb_cache.
CacheMetadata rocksdb_cache_metadata(std::string_view name, ::rocksdb::Cache& cache,
                                     std::size_t block_bytes);

}  // namespace paygo::bench
