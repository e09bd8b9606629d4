// paygo/paygo.hpp — the umbrella header of the core library (paygo::paygo).
//
// paygo: scalable reference counting for multicore machines.
//
// What it is: a reference counter for objects that many threads pin for a
// short time and one reclaimer occasionally frees (cached pages, blocks,
// buffers), and the pieces it is built from:
//   paygo/counter.hpp        the RefCounter concept and its contract
//   paygo/paygo_counter.hpp  Paygo: anchor-based per-slot tables (FAST'19),
//                            self-tuning (central until contended); scales
//                            with cores on one hot object, a reclaim of a
//                            distributed object pays a fence and a scan
//   paygo/domain.hpp         slots: who owns which per-owner state
//   paygo/fence.hpp          the asymmetric (light/heavy) fence pair
//
// Not in here: the classic alternatives (Atomic, Noop, PerSlotArray, Sloppy,
// Refcache, PercpuRef), kept for comparison in namespace paygo::baselines
// (paygo/baselines/, target paygo::baselines), and the page cache
// (paygo/cache/, target paygo::cache). Headers under a `detail/` folder are
// internal: included by these headers, never by users; they change without
// notice.
//
// When not to use: if objects are rarely shared, or freed about as often as
// they are read, use one atomic (paygo::baselines::Atomic, or
// std::shared_ptr): distributed counts make every reclaim pay for what every
// get saved.
#pragma once

#include "paygo/config.hpp"
#include "paygo/counter.hpp"
#include "paygo/domain.hpp"
#include "paygo/fence.hpp"
#include "paygo/paygo_counter.hpp"
