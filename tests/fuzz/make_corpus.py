#!/usr/bin/env python3
"""Writes the seed corpus of the fuzz harnesses (tests/fuzz/corpus/<harness>/).

Run from anywhere: python3 tests/fuzz/make_corpus.py. The seeds are small,
deterministic inputs that reach every operation of each harness; libFuzzer
grows its own corpus from them (in build/fuzz/, not committed).

The harnesses read their input with FuzzedDataProvider::ConsumeIntegral
(tests/fuzz/fuzz_common.hpp), which consumes bytes from the END of the input
backwards, a 16-bit field high byte first. So every seed below is written as
its stream of bytes in the order the harness consumes them (u16() gives a
16-bit field's two bytes in that order), and write() stores the stream
reversed. What a seed does can be checked with the replay binaries:
PAYGO_FUZZ_TRACE=1 build/release/tests/paygo_fuzz_replay tests/fuzz/corpus/paygo_fuzz/flip
prints every op and the model after it.
"""
import os
import random

HERE = os.path.dirname(os.path.abspath(__file__))


def write(harness, name, stream):
    # stream: the bytes in consumption order; the file holds them reversed.
    assert all(0 <= b < 256 for b in stream)
    d = os.path.join(HERE, "corpus", harness)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(bytes(reversed(stream)))


def u16(v):
    # ConsumeIntegral<uint16_t>: the first byte consumed is the high byte.
    assert 0 <= v < 1 << 16
    return [(v >> 8) & 0xFF, v & 0xFF]


def op(kind, thread, arg):
    # paygo_fuzz: kind = op & 15, thread = (op >> 4) & 3.
    assert 0 <= kind < 16 and 0 <= thread < 4
    return [kind | (thread << 4), arg & 0xFF]


def header(h0, local_limit=1, promote_events=1, demote_sweeps=1, inhibit=False):
    # h0: max_slots 1 + h0 % 4, table_entries 1 << ((h0 >> 2) % 4), probe
    # 1 + (h0 >> 4) % 3; h1: local_limit 1 + h1 % 4, promote_events
    # 1 + (h1 >> 2) % 4, demote_sweeps 1 + (h1 >> 4) % 3, inhibit_ms 999 if
    # bit 6 (else 0).
    h1 = (local_limit - 1) | ((promote_events - 1) << 2) | ((demote_sweeps - 1) << 4) | \
        (0x40 if inhibit else 0)
    return [h0, h1]


# ---- paygo_fuzz: header (2 bytes), then (op, arg) pairs, in consumption order ----
GET, BURST, PUT_HOME, PUT_FROM, EXIT, FREEZE, UNFREEZE, RECLAIM, BATCH, RESET, HOT, COLD, PUT_OBJ = (
    0, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13)
# HOT / COLD pin with set_distributed; with arg bit 7 (SET_MODE) with
# set_mode(Mode::Distributed / Mode::Central). AUTO: set_mode(Mode::Auto).
# SWEEP: 1 + (arg >> 4) % 4 sweeps of the objects in arg's low 4 bits (0: all).
AUTO, SWEEP = 14, 15
SET_MODE = 0x80


def sweep(objs_mask, times=1):
    return op(SWEEP, 0, (objs_mask & 15) | ((times - 1) << 4))


seeds = {}
# Central tokens, freeze refused, reclaim after the puts, reset.
seeds["central"] = [0x0F, 0x03] + op(GET, 0, 0) + op(GET, 1, 0) + op(FREEZE, 2, 0) + \
    op(PUT_FROM, 2, 0) + op(PUT_HOME, 0, 0) + op(RECLAIM, 3, 0) + op(RESET, 3, 0) + op(GET, 0, 0)
# Hot objects: home and anchor puts, freeze + query, unfreeze.
seeds["hot_anchor"] = [0x0F, 0x03] + op(HOT, 0, 1) + op(GET, 0, 1) + op(GET, 1, 1) + \
    op(PUT_FROM, 2, 0) + op(FREEZE, 3, 1) + op(GET, 2, 1) + op(UNFREEZE, 3, 1) + \
    op(PUT_HOME, 0, 0) + op(RECLAIM, 3, 1)
# Thread exit with tokens held elsewhere, adoption by a fresh thread.
seeds["exit_adopt"] = [0x00, 0x00] + op(HOT, 0, 2) + op(GET, 0, 2) + op(GET, 0, 2) + \
    op(EXIT, 0, 0) + op(GET, 1, 2) + op(PUT_FROM, 1, 0) + op(FREEZE, 2, 2) + \
    op(UNFREEZE, 2, 2) + op(PUT_OBJ, 3, 2) + op(RECLAIM, 1, 2)
# Tiny tables: saturation (local_limit 1), window full, central fallback, fold.
seeds["saturate"] = [0x00, 0x00] + op(HOT, 0, 0) + op(HOT, 0, 1) + op(HOT, 0, 2) + \
    op(BURST, 0, 5) + op(BURST, 0, 1) + op(BURST, 0, 2) + op(PUT_FROM, 1, 0) + op(PUT_FROM, 1, 1) + \
    op(BURST, 0, 4) + op(FREEZE, 2, 0) + op(PUT_OBJ, 1, 0) + op(RECLAIM, 2, 0) + op(RESET, 2, 0)
# Batch reclaim over every object, some busy, then recycle.
seeds["batch"] = [0x06, 0x01] + op(HOT, 0, 0) + op(HOT, 0, 3) + op(GET, 0, 0) + op(GET, 1, 3) + \
    op(BATCH, 2, 0x0F) + op(PUT_OBJ, 2, 0) + op(BATCH, 2, 0x0F) + op(RESET, 0, 3) + \
    op(PUT_OBJ, 2, 3) + op(BATCH, 3, 0x0F) + op(RESET, 0, 0) + op(RESET, 0, 3) + op(COLD, 1, 0)
# Mode flips with tokens of both kinds live.
seeds["flip"] = [0x25, 0x02] + op(GET, 0, 1) + op(HOT, 1, 1) + op(GET, 0, 1) + op(COLD, 1, 1) + \
    op(GET, 2, 1) + op(FREEZE, 3, 1) + op(PUT_HOME, 0, 0) + op(FREEZE, 3, 1) + \
    op(PUT_HOME, 0, 0) + op(PUT_HOME, 0, 0) + op(FREEZE, 3, 1) + op(UNFREEZE, 3, 1)
# Self-tuning: promotion by two threads' votes (promote_events 1), a sweep
# that demotes with central tokens live (no freeze), promotion again, a
# quiet demotion (freeze, scan, mask cleared), then the object is central.
seeds["promote_demote"] = header(0x0F) + op(GET, 0, 0) + op(GET, 1, 0) + op(GET, 2, 0) + \
    op(GET, 3, 0) + op(GET, 3, 0) + sweep(0, 2) + op(GET, 1, 0) + op(PUT_OBJ, 0, 0) + \
    op(GET, 0, 0) + op(GET, 1, 0) + op(GET, 2, 0) + op(GET, 3, 0) + op(PUT_OBJ, 2, 0) + \
    sweep(1, 3) + op(GET, 2, 0) + op(PUT_OBJ, 1, 0) + op(RECLAIM, 3, 0) + op(RESET, 3, 0) + \
    op(GET, 0, 0)
# Demotion with a distributed token live (the freeze succeeds, the scan finds
# it: DISTRIBUTED cleared, mask kept), a remote put, then reclaim and reset.
seeds["demote_busy"] = header(0x0F, demote_sweeps=2) + op(GET, 0, 1) + op(GET, 1, 1) + \
    op(GET, 2, 1) + op(PUT_OBJ, 0, 1) + op(GET, 3, 1) + sweep(2, 4) + op(FREEZE, 1, 1) + \
    op(PUT_FROM, 1, 0) + op(UNFREEZE, 1, 1) + op(GET, 2, 1) + op(PUT_OBJ, 3, 1) + \
    op(BATCH, 0, 0x0F) + op(RESET, 0, 1) + op(GET, 1, 1) + sweep(0, 4)
# Pins and un-pins: pinned central under contention (no promotion, central
# tokens only), pinned distributed through sweeps (never demoted), handed
# back with set_mode(Auto) with tokens of both kinds live, promoted again,
# inhibit_ms 999 after a demotion.
seeds["pin_modes"] = header(0x0F, promote_events=2, inhibit=True) + \
    op(COLD, 0, 2 | SET_MODE) + op(GET, 0, 2) + op(GET, 1, 2) + op(GET, 2, 2) + op(GET, 3, 2) + \
    op(HOT, 1, 3) + op(GET, 0, 3) + op(GET, 1, 3) + sweep(0, 4) + op(AUTO, 2, 3) + \
    op(AUTO, 2, 2) + op(GET, 0, 2) + op(GET, 1, 2) + op(GET, 2, 2) + op(GET, 3, 2) + \
    op(GET, 0, 2) + op(GET, 1, 2) + op(HOT, 3, 2 | SET_MODE) + op(GET, 2, 2) + op(AUTO, 3, 2) + \
    op(PUT_OBJ, 0, 2) + op(PUT_OBJ, 0, 3) + op(BURST, 0, 3) + op(BURST, 1, 3) + sweep(0, 4) + \
    op(BURST, 2, 3) + op(BURST, 3, 3) + sweep(0, 4) + op(COLD, 0, 3) + op(PUT_OBJ, 1, 3)
rng = random.Random(1)
for i in range(4):
    seeds["random%d" % i] = [rng.randrange(256) for _ in range(2 + 2 * 120)]
for name, data in seeds.items():
    write("paygo_fuzz", name, data)

# ---- cache_fuzz: header (4 bytes), then (kind, a, b16) ops, in consumption order ----
READ, PIN, UNPIN, ADVISE, DROP, REFRESH, FAULT, CHUNK, ERRORS, CLOSE, STATS = \
    0, 2, 4, 5, 6, 7, 8, 9, 10, 11, 12


def cop(kind, a, b):
    return [kind, a & 0xFF] + u16(b & 0xFFFF)


def advise(f, adv, off, len_nonzero=True):
    # a: file = a % 3; len == 0 when (a >> 2) % 4 == 0; advice = (a >> 4) % 4
    a = f | ((1 if len_nonzero else 0) << 2) | (adv << 4)
    return cop(ADVISE, a, off)


c = {}
# Capacity 4 pages, Paygo; reads, pins, drop, reads again.
c["basic"] = [0x03, 100, 30, 0] + cop(READ, 0, 0) + cop(READ, 0, 5000) + cop(PIN, 0, 1) + \
    cop(DROP, 0, 1) + cop(READ, 0, 4096) + cop(READ, 1, 100) + cop(UNPIN, 0, 0) + cop(DROP, 0, 0)
# Capacity 2 pages: pins fill it, ENOBUFS, unpin, OK again.
c["enobufs"] = [0x01, 200, 200, 10] + cop(PIN, 0, 0) + cop(PIN, 0, 1) + cop(PIN, 0, 2) + \
    cop(READ, 0, 9000) + cop(READ, 1, 0) + cop(UNPIN, 0, 0) + cop(PIN, 0, 2) + cop(DROP, 0, 0)
# Injected I/O errors and short reads.
c["faults"] = [0x05, 150, 60, 1] + cop(FAULT, 0, 0) + cop(READ, 0, 100) + cop(READ, 0, 100) + \
    cop(CHUNK, 0, 1000) + cop(FAULT, 0, 1) + cop(PIN, 0, 2) + cop(PIN, 0, 2) + cop(READ, 0, 8000) + \
    cop(CHUNK, 0, 0) + cop(DROP, 0, 0)
# Files that shrink and grow under pins, then refresh.
c["refresh"] = [0x0D, 120, 40, 250] + cop(PIN, 0, 1) + cop(PIN, 0, 2) + cop(REFRESH, 0, 5000) + \
    cop(READ, 0, 4000) + cop(REFRESH, 0, 20000) + cop(PIN, 0, 2) + cop(READ, 0, 12000) + \
    cop(DROP, 0, 0) + cop(REFRESH, 2, 0) + cop(READ, 2, 0) + cop(REFRESH, 2, 777)
# Advice: Hot, WillNeed, DontNeed, Normal; the Atomic counter.
c["advise"] = [0x0B, 250, 250, 250] + advise(0, 0, 0, False) + advise(0, 2, 0) + \
    cop(PIN, 0, 3) + advise(0, 3, 0, False) + cop(READ, 0, 12500) + advise(0, 1, 4096) + \
    cop(STATS, 0, 0) + cop(ERRORS, 1, 0) + cop(DROP, 0, 3)
# Open twice, close once (still open); close the last open with a pin live,
# reopen, read the pinned page again (a miss), drop.
c["close"] = [0x03, 100, 60, 30] + cop(PIN, 0, 1) + cop(READ, 0, 100) + cop(CLOSE, 0, 0) + \
    cop(READ, 0, 4096) + cop(CLOSE, 0, 1) + cop(READ, 0, 4096) + cop(PIN, 0, 1) + \
    cop(CLOSE, 1, 1) + cop(DROP, 0, 0) + cop(CLOSE, 0, 3) + cop(STATS, 0, 0)
rng = random.Random(2)
for i in range(4):
    # The same draws as before the harnesses read through FuzzedDataProvider
    # (each op drew kind, a, then b's low and high byte), so each random seed
    # still decodes to the same ops.
    r = [rng.randrange(256) for _ in range(4 + 4 * 80)]
    c["random%d" % i] = r[:4] + [x for k in range(4, len(r), 4)
                                 for x in cop(r[k], r[k + 1], r[k + 2] | (r[k + 3] << 8))]
for name, data in c.items():
    write("cache_fuzz", name, data)
print("wrote %d paygo_fuzz and %d cache_fuzz seeds" % (len(seeds), len(c)))
