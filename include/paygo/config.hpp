// paygo/config.hpp — build-wide constants and attributes.
//
// Nothing here is a tuning knob for users; it is the vocabulary the other
// headers share (cache-line size, cold-path attributes, sanitizer detection).
#pragma once

#include <cstddef>

namespace paygo {

/// Padding for lines written by one side and read by another. 128 bytes, not
/// 64: on x86-64 the adjacent-line prefetcher pulls pairs of lines, so two
/// 64-byte-aligned hot fields in one 128-byte pair still interfere.
inline constexpr std::size_t kDestructiveInterference = 128;

}  // namespace paygo

// Slow paths live out of line so the fast paths stay a few instructions.
#define PAYGO_COLD [[gnu::noinline, gnu::cold]]
#define PAYGO_INLINE [[gnu::always_inline]] inline

// ThreadSanitizer does not model membarrier(2) (it cannot see that the
// kernel ran a barrier on every thread), so under TSAN both sides of every
// asymmetric fence become real seq_cst fences, which TSAN does understand.
#if defined(__SANITIZE_THREAD__)
#define PAYGO_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define PAYGO_TSAN 1
#endif
#endif
#ifndef PAYGO_TSAN
#define PAYGO_TSAN 0
#endif
