// paygo/paygo.hpp — the umbrella header.
//
// paygo: scalable reference counting for multicore machines.
//
// What it is: reference counters for objects that many threads pin for a
// short time and one reclaimer occasionally frees (cached pages, blocks,
// buffers). All counters satisfy paygo::RefCounter (paygo/counter.hpp):
//   Paygo         anchor-based per-slot tables (FAST'19): scales with
//                 cores on one hot object; reclaim pays a fence and a scan.
//   Atomic        one shared atomic (vanilla Linux): exact, simple, stops
//                 scaling at a few cores on a shared object.
//   Noop          counts nothing: the benchmark ceiling, never for real use.
//   PerSlotArray  a dense counter per slot per object ("cache affinity"):
//                 fast, but memory grows as slots x objects.
//   Sloppy        per-slot spare references (OSDI'10).
//   Refcache      per-slot delta caches flushed per epoch; a zero is
//                 confirmed only after a quiet epoch (EuroSys'13).
//   PercpuRef     per-slot counts until killed, then one atomic (Linux's
//                 percpu_ref).
//
// When not to use any of them: if objects are rarely shared, or freed about
// as often as they are read, use Atomic (or std::shared_ptr): distributed
// counts make every reclaim pay for what every get saved.
#pragma once

#include "paygo/config.hpp"
#include "paygo/counter.hpp"
#include "paygo/counter_list.hpp"
#include "paygo/counters/atomic.hpp"
#include "paygo/counters/noop.hpp"
#include "paygo/counters/paygo.hpp"
#include "paygo/counters/per_slot_array.hpp"
#include "paygo/counters/percpu_ref.hpp"
#include "paygo/counters/refcache.hpp"
#include "paygo/counters/sloppy.hpp"
#include "paygo/domain.hpp"
#include "paygo/fence.hpp"
