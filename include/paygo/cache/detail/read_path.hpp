// paygo/cache/detail/read_path.hpp — internal: PageCache<C>'s read path
// (the inline hit, the full lookup loop, read() and pin()). Included by
// paygo/cache/page_cache.hpp; never include it yourself.
#pragma once

#include <algorithm>
#include <cstring>

namespace paygo::cache {

// The hit path, inline in read(): look up, get, re-check, done; `out` is
// the frame and the token its reference. Anything unusual (no index slot
// yet, a miss, a frozen or recycled frame, a page still loading, an error)
// leaves `out` null and the token empty (a reference taken is dropped), and
// acquire_loop() starts over with the full loop below. The token is built
// in place (returned by NRVO): no moves on the hit path.
template <RefCounter C>
typename PageCache<C>::Token PageCache<C>::try_hit(File& f, std::uint64_t page,
                                                   Frame*& out) noexcept {
  // Acquire: pairs with the release store in grow_index().
  Index* idx = f.index.load(std::memory_order_acquire);
  if (page >= idx->npages) [[unlikely]]
    return {};
  std::atomic<IndexedFrame*>& slot = idx->slots[page];
  // Acquire: pairs with the release CAS that published the frame.
  Frame* fr = frame(slot.load(std::memory_order_acquire));
  if (fr == nullptr) [[unlikely]]
    return {};
  Token t = counter_.get(fr->ref);
  if (!t) [[unlikely]]
    return t;
  // The same three checks as acquire_loop(), which says why each is needed;
  // the state's acquire pairs with the loader's release store of kReady.
  if (slot.load(std::memory_order_acquire) != indexed(fr) ||
      fr->key.load(std::memory_order_relaxed) != make_key(f.id, page) ||
      fr->state.load(std::memory_order_acquire) != kReady) [[unlikely]] {
    t.reset();
    return t;
  }
  if (!fr->referenced.load(std::memory_order_relaxed)) [[unlikely]] {
    fr->referenced.store(true, std::memory_order_relaxed);  // CLOCK hint; written only if clear
  }
  count_hit();
  out = fr;
  return t;
}

template <RefCounter C>
Result<typename PageCache<C>::Frame*> PageCache<C>::acquire_loop(File& f, std::uint64_t page,
                                                                 Token& token) {
  const std::uint64_t key = make_key(f.id, page);
  for (;;) {
    // Acquire: pairs with the release store in grow_index().
    Index* idx = f.index.load(std::memory_order_acquire);
    if (page >= idx->npages) {
      grow_index(f, page + 1);
      continue;
    }
    std::atomic<IndexedFrame*>& slot = idx->slots[page];
    // Acquire: pairs with the release CAS that published the frame.
    Frame* fr = frame(slot.load(std::memory_order_acquire));
    if (fr == nullptr) {
      bool retry = false;
      auto r = load_page(f, *idx, page, token, retry);
      if (retry) continue;
      count_miss();
      return r;
    }
    Token t = counter_.get(fr->ref);
    if (!t) continue;  // frozen or dead under us: look again
    // Re-check, as the kernel's folio != xas_reload(): the frame may have
    // been reclaimed and reused between our load and our get. Acquire:
    // pairs with the release CAS that published the frame (load_page()).
    if (slot.load(std::memory_order_acquire) != indexed(fr)) continue;
    if (fr->key.load(std::memory_order_relaxed) != key) {
      // Recycled for another page while the slot still points at it (an
      // index copied during growth): drop the stale pointer, look again.
      detail::unlink_slot(slot, indexed(fr));
      continue;
    }
    std::uint32_t st =
        fr->state.load(std::memory_order_acquire);  // pairs with the loader's release
    while (st == kLoading) {
      // Acquire (both): pair with the loader's seq_cst exchange in
      // paygo::detail::store_and_wake_all(), as the load above does.
      fr->state.wait(kLoading, std::memory_order_acquire);  // one read for all missers
      st = fr->state.load(std::memory_order_acquire);
    }
    if (st == kReady) [[likely]] {
      if (!fr->referenced.load(std::memory_order_relaxed)) {
        fr->referenced.store(true, std::memory_order_relaxed);  // CLOCK hint; written only if clear
      }
      count_hit();
      token = std::move(t);
      return fr;
    }
    if (st == kError) {
      return std::error_code(fr->error.load(std::memory_order_relaxed), std::generic_category());
    }
    // kIdle (unlinked by refresh or a lost publish race) or kFree: drop the
    // stale pointer so later readers do not find it, and look again.
    detail::unlink_slot(slot, indexed(fr));
  }
}

template <RefCounter C>
Result<std::size_t> PageCache<C>::read(FileId id, void* buf, std::size_t len,
                                       std::uint64_t offset) {
  File* f = file(id);
  if (f == nullptr) return std::errc::bad_file_descriptor;
  if (buf == nullptr && len != 0) return std::errc::invalid_argument;
  return read_pages<true>(*f, static_cast<std::byte*>(buf), len, offset, 0);
}

// read()'s loop, page by page from `done`. kHitPath: only try_hit(), and at
// the first page it cannot serve, the rest of the read goes to the other
// instantiation (out of line), which runs the full acquire_loop() for every
// page. So the hit path's token is never reassigned: it is built in place,
// lives in registers and its put is inline.
template <RefCounter C>
template <bool kHitPath>
Result<std::size_t> PageCache<C>::read_pages(File& f, std::byte* out, std::size_t len,
                                             std::uint64_t offset, std::size_t done) {
  while (done < len) {
    const std::uint64_t size = f.size.load(std::memory_order_relaxed);
    const std::uint64_t pos = offset + done;
    if (pos >= size) break;  // end of file: a short read
    const std::uint64_t page = pos / kPageSize;
    const std::size_t in = static_cast<std::size_t>(pos % kPageSize);
    Frame* fr = nullptr;
    Token token = kHitPath ? try_hit(f, page, fr) : Token{};  // built in place
    if constexpr (kHitPath) {
      if (fr == nullptr) [[unlikely]]
        return read_pages_slow(f, out, len, offset, done);
    } else {
      auto r = acquire_loop(f, page, token);
      if (!r) {
        if (done != 0) break;  // pread semantics: report what was read
        return r.error();
      }
      fr = *r;
    }
    const std::size_t valid = fr->len.load(std::memory_order_relaxed);
    const std::uint64_t page_end = std::min<std::uint64_t>(size - page * kPageSize, valid);
    if (in >= page_end) break;  // the file shrank under us
    const std::size_t n =
        std::min<std::size_t>(len - done, static_cast<std::size_t>(page_end) - in);
    std::memcpy(out + done, fr->data + in, n);
    done += n;
    if (in + n < kPageSize && page_end < kPageSize) break;  // short page: end of file
  }
  return done;
}

template <RefCounter C>
Result<std::size_t> PageCache<C>::read_pages_slow(File& f, std::byte* out, std::size_t len,
                                                  std::uint64_t offset, std::size_t done) {
  return read_pages<false>(f, out, len, offset, done);
}

template <RefCounter C>
Result<typename PageCache<C>::PinnedPage> PageCache<C>::pin(FileId id, std::uint64_t page) {
  File* f = file(id);
  if (f == nullptr) return std::errc::bad_file_descriptor;
  if (page >= pages_for(f->size.load(std::memory_order_relaxed)))
    return std::errc::invalid_argument;
  Token token;
  auto fr = acquire_loop(*f, page, token);
  if (!fr) return fr.error();
  return PinnedPage(*this, std::move(token), (*fr)->data,
                    (*fr)->len.load(std::memory_order_relaxed));
}

}  // namespace paygo::cache
