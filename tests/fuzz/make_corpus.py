#!/usr/bin/env python3
"""Writes the seed corpus of the fuzz harnesses (tests/fuzz/corpus/<harness>/).

Run from anywhere: python3 tests/fuzz/make_corpus.py. The seeds are small,
deterministic inputs that reach every operation of each harness; libFuzzer
grows its own corpus from them (in build/fuzz/, not committed).
"""
import os
import random

HERE = os.path.dirname(os.path.abspath(__file__))


def write(harness, name, data):
    d = os.path.join(HERE, "corpus", harness)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(bytes(data))


def op(kind, thread, arg):
    # paygo_fuzz: kind = op % 14, thread = (op >> 4) & 3. 14 * k + kind keeps
    # the kind; the thread bits are then fixed up.
    for b in range(256):
        if b % 14 == kind and (b >> 4) & 3 == thread:
            return [b, arg & 0xFF]
    raise ValueError((kind, thread))


# ---- paygo_fuzz: header (2 bytes), then (op, arg) pairs ----
GET, BURST, PUT_HOME, PUT_FROM, EXIT, FREEZE, UNFREEZE, RECLAIM, BATCH, RESET, HOT, COLD, PUT_OBJ = (
    0, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13)

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
rng = random.Random(1)
for i in range(4):
    seeds["random%d" % i] = [rng.randrange(256) for _ in range(2 + 2 * 120)]
for name, data in seeds.items():
    write("paygo_fuzz", name, data)

# ---- cache_fuzz: header (4 bytes), then (kind, a, b16) ops ----
READ, PIN, UNPIN, ADVISE, DROP, REFRESH, FAULT, CHUNK, ERRORS, STATS = 0, 2, 4, 5, 6, 7, 8, 9, 10, 11


def cop(kind, a, b):
    return [kind, a & 0xFF, b & 0xFF, (b >> 8) & 0xFF]


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
rng = random.Random(2)
for i in range(4):
    c["random%d" % i] = [rng.randrange(256) for _ in range(4 + 4 * 80)]
for name, data in c.items():
    write("cache_fuzz", name, data)
print("wrote %d paygo_fuzz and %d cache_fuzz seeds" % (len(seeds), len(c)))
