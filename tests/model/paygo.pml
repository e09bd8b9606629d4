/*
 * paygo.pml — Promela model of the PAYGO freeze/query protocol as
 * implemented in include/paygo/paygo_counter.hpp, src/paygo.cpp,
 * include/paygo/detail/word.hpp and src/domain.cpp.
 * docs/verification.md maps every labelled step to the code line it stands
 * for; tests/model/run_model.sh checks every variant.
 *
 * Actors
 *   T0         reader thread, owns slot 0 from the start. Up to GETS0 gets
 *              of the object O; each token is put on the home slot or
 *              handed to T1 (migration). It may also take and release a
 *              token of another object X in the same entry (entry reuse).
 *              Then it exits: its slot is retired.
 *   T1         reader thread without a slot; registers on its first get
 *              (adopting slot 0 if T0 retired it, else taking slot 1).
 *              Puts the tokens T0 hands it: home put if it now owns the
 *              token's home slot, else the anchor. T0 may hand it its X
 *              token too: X's remote put lands on the anchor of T0's entry,
 *              possibly while a scan for O is between its loads of that
 *              entry's local and anchor (the entry was O's when read).
 *   Reclaimer  the cache: up to ATTEMPTS try_reclaim (or reclaim_batch)
 *              calls on O, and RESETS recycles (reset) of a dead O. The
 *              freeze CAS sets FROZEN and DEAD; a reclaim that then reads
 *              an empty mask is done (dead): no heavy fence, no scan, no
 *              mask store (always on, as in the code); otherwise it takes
 *              DEAD back and fences and scans as before.
 *   Promoter   (TUNE) self-tuning promotion: up to PROMOTES relaxed CASes
 *              that set DISTRIBUTED unless FROZEN, DEAD or set already,
 *              at any time (the code does it in whichever thread saw
 *              contention; a separate process allows more).
 *   Demoter    (TUNE) sweep() -> demote(): up to DEMOTES times, select O
 *              if DISTRIBUTED and not FROZEN, freeze (the reclaim's CAS),
 *              heavy fence, scan every table; quiet (sum 0): mask := 0, then
 *              one CAS clears FROZEN and DISTRIBUTED and bumps the
 *              generation; busy: the CAS clears FROZEN and DISTRIBUTED
 *              only. Freeze failed: clear_distributed() (DISTRIBUTED only).
 *   Flusher    x86-TSO: drains the oldest entry of any reader's store
 *              buffer, at any time.
 *   (DUP)      dup_raw() / put_raw() (RocksDB's Cache::Ref(handle)): the
 *              holder of a token of O takes a second reference through it
 *              (T0 up to DUPS0 times, on a token it got or one T1 handed
 *              back; T1 up to DUPS1 times, on its own token or one T0
 *              handed it); either reference may then be put by its holder
 *              or handed on. Distributed: anchor +1, light
 *              fence, word load, back off (anchor -1) and wait while
 *              FROZEN; central: the central CAS. Every token of O is put
 *              with put_raw: home (local - 1) only if the caller owns the
 *              home slot and the entry's local is not 0, else the anchor.
 *              T1 may hand a token back to T0 (channel mb1), which puts it.
 *
 *   (PERCPU)   SlotMode::Cpu: T0 and T1 are CpuReader processes that share
 *              CPU 0's table, so both count on the same entry with locked
 *              RMWs (T1 runs each get on CPU 0 or, CPUS=2, CPU 1). T0 gets
 *              O up to GETS0 times and X up to GETSX times (claiming the
 *              entry for X races with T1's gets of O and with O's scans),
 *              T1 gets O GETS1 times (and X GETSX1 times); each holds one
 *              token of each object at most and puts it at any later step
 *              (the put is the same anchor RMW from any thread or CPU, so
 *              this covers migration). No registration, no slot owner, no
 *              hand-off channel; Reclaimer and Flusher as above.
 *
 * Modes: without TUNE, O is distributed for ever (DISTRIBUTED always set,
 * as set_distributed(o, true) pins it). With TUNE, O starts central, as an
 * automatic object does (PROMOTED: already promoted; reset() makes it
 * central again): a get whose
 * w0 has DISTRIBUTED clear takes the central CAS (get_other), one that has
 * it set goes distributed; tokens of both kinds may be live at once.
 *
 * Probe window: 1 entry per slot table (every object hashes to it), so an
 * entry held by X forces O's gets to the central word (window full).
 *
 * Weak memory: x86-TSO. Each reader has a FIFO store buffer for its plain
 * stores (entry.local, entry.obj). Its loads of its own entry read the
 * buffer first (store forwarding). Locked RMWs (fetch_or, fetch_sub, CAS)
 * and the registry mutex drain the buffer and act atomically on memory.
 * The reclaimer's plain stores (mask reset in kill, word store in reset)
 * are each followed by a locked RMW or by nothing that reads back, so they
 * are modelled as sequentially consistent (docs/verification.md). The
 * demoter's mask := 0 is followed by its locked CAS on the word, so it is
 * one step that is visible at once (its drain may come at any later
 * point before the CAS: the steps in between are other processes').
 *
 * Variants (-D):
 *   MEMBARRIER          light_fence = compiler barrier (no drain),
 *                       heavy_fence = every reader's buffer drained.
 *                       Default: seq_cst fences: light_fence = drain own
 *                       buffer (mfence), heavy_fence = no-op (the freeze
 *                       CAS already was a locked instruction).
 *   BATCH               reclaim_batch: freeze, the empty-mask test, one
 *                       heavy fence, scan every entry of every table
 *                       (mask ignored).
 *   SHARED_GROUP        both slots in one mask group (group_size 2).
 *   BROKEN_GROUP_RULE   the seed's rule: a query clears a group's bit when
 *                       that group's sum reads 0, even if the reclaim fails.
 *   NO_READER_FENCE     get() without light_fence (use without MEMBARRIER).
 *   NO_GENERATION_CHECK get() checks only FROZEN on the word re-read.
 *   NO_HEAVY_FENCE      try_freeze() without heavy_fence (with MEMBARRIER).
 *   NO_CLAMP            a scan adds an entry's local + anchor even when it
 *                       is negative (entry_count() without its clamp).
 *   TUNE                self-tuning: O starts central; Promoter, Demoter.
 *   PROMOTED            (TUNE) O starts promoted (DISTRIBUTED, automatic),
 *                       so one promotion can follow a demotion.
 *   DEMOTE_NO_GEN       (TUNE) broken: a quiet demotion does not bump the
 *                       generation.
 *   DEMOTE_NO_SCAN      (TUNE) broken: a demotion clears the mask and bumps
 *                       the generation without the scan (always "quiet").
 *   SKIP_MASK_FIRST     broken: the reclaim reads the mask before its
 *                       freeze CAS, and kills without fence or scan when
 *                       that read 0.
 *   DUP                 dup_raw()/put_raw() (above), with two more ghost
 *                       checks: a freeze's scan counts at least the live
 *                       references when it ends, and no reference is born
 *                       from then until the unfreeze (the freeze contract
 *                       a frozen query() relies on); an entry's local never
 *                       goes below 0 (the code's 18-bit count field would
 *                       borrow from the use bits).
 *   DUP_NO_FROZEN_CHECK (DUP) broken: dup_raw() returns after the anchor
 *                       +1, no word load, no back-off.
 *   PUT_RAW_NO_LOCAL_TEST (DUP) broken: put_raw() puts at home (local - 1)
 *                       whenever the caller owns the home slot.
 *   DUP_NO_FENCE        (DUP) broken, beyond x86: dup_raw() without
 *                       light_fence(), where the word load may pass the
 *                       relaxed RMW (ARM, POWER; on x86 the lock xadd is a
 *                       full barrier): the load is done before the anchor
 *                       +1 reaches memory. Use without MEMBARRIER.
 *   DUP_PLAIN_PUT       (DUP) broken use: only the tokens a dup made or
 *                       copied are put with put_raw(); the others with the
 *                       plain put (home: local - 1 always).
 *   NO_FREEZE_CONTRACT  (DUP) the freeze-contract checks off (the others
 *                       stay): with DUP_NO_FROZEN_CHECK, shows that the
 *                       missing check breaks that contract only.
 *   PERCPU              per-CPU tables (above; not with TUNE or DUP). An
 *                       entry {obj, local, anchor} counts in anchor only
 *                       (local's count bits stay 0). get: obj == O, else
 *                       claim; anchor.fetch_add(1); obj re-load, not
 *                       exactly O -> anchor - 1, retry (RETRIES) or go
 *                       central; mask bit; light fence; w1: FROZEN or
 *                       generation changed -> anchor - 1, fail. Claim of a
 *                       free entry (anchor 0, obj P untagged): CAS obj
 *                       P -> P|TAG; anchor load, not 0 -> CAS back, give
 *                       up; else obj := O (plain). A scan counts obj O and
 *                       O|TAG.
 *   PERCPU_PLAIN_CLAIM  (PERCPU) broken: the claim stores obj := O right
 *                       after its free test: no tag, no anchor re-check.
 *   PERCPU_NO_RECHECK   (PERCPU) broken: get() does not re-load obj after
 *                       its anchor + 1.
 *   PERCPU_SCAN_IGNORES_TAG (PERCPU) broken: a scan counts an entry only
 *                       if its obj is exactly O (O|TAG is skipped).
 * Bounds: BUF (store buffer entries), GETS0, GETS1, GETSX, ATTEMPTS,
 * RESETS, LIMIT (Options::local_limit), PROMOTES, DEMOTES, DUPS0, DUPS1;
 * PERCPU: CPUS (1 or 2 tables), RETRIES, GETSX1.
 */

#ifndef BUF
#define BUF 2
#endif
#ifndef GETS0
#define GETS0 2
#endif
#ifndef GETS1
#define GETS1 1
#endif
#ifndef GETSX
#define GETSX 1
#endif
#ifndef ATTEMPTS
#define ATTEMPTS 2
#endif
#ifndef RESETS
#define RESETS 1
#endif
#ifndef LIMIT
#define LIMIT 1
#endif
#ifndef PROMOTES
#define PROMOTES 1
#endif
#ifndef DEMOTES
#define DEMOTES 1
#endif
#ifndef DUPS0
#define DUPS0 1
#endif
#ifndef DUPS1
#define DUPS1 1
#endif
#ifndef CPUS
#define CPUS 1      /* PERCPU: CPU tables (1: T0 and T1 share CPU 0's) */
#endif
#ifndef RETRIES
#define RETRIES 1   /* PERCPU: retries of a get whose obj re-load failed */
#endif
#ifndef GETSX1
#define GETSX1 0    /* PERCPU: T1's gets of X */
#endif
#if defined(PERCPU) && (defined(TUNE) || defined(DUP))
#error "PERCPU: not modelled with TUNE or DUP"
#endif

#define NT 2        /* reader threads T0, T1 */
#define NS 2        /* slots (max_slots) */
#define NOSLOT 255
#define NOOBJ 0     /* entry.obj == nullptr */
#define O 1         /* the object being reclaimed */
#define X 2         /* another object sharing the entry */
#define CENTRAL 0   /* token kinds */
#define DIST 1
#define XTOK 2      /* a token of X (always distributed) */
#define DISTD 3     /* DUP_PLAIN_PUT: a distributed token a dup made or copied */
#define TAG 4       /* PERCPU: obj + TAG = obj | tag bit, "claiming"; still names obj */

#ifdef SHARED_GROUP
#define GBIT(s) 1
#else
#define GBIT(s) (1 << (s))
#endif

/* ---- shared memory ------------------------------------------------------ */
/* Object::word_ of O: central count, FROZEN, DISTRIBUTED, DEAD, generation.
 * (Without TUNE, DISTRIBUTED is always set: every get takes the
 * distributed path unless it falls back.) */
short ccount;
bit frozen;
bit dist;
bit dead;
byte gen;
/* Object::mask_ of O */
byte mask;
/* slot tables: one PaygoEntry per slot */
byte eobj[NS];
short elocal[NS];
short eanchor[NS];
/* Slot::payload != nullptr (the table exists) */
bit tbl[NS];
/* Slot::owner: 0 = none (retired or never registered), t+1 = thread t */
byte owner[NS];
bit retired0;   /* registry free list: slot 0 retired */
bit used1;      /* slot 1 handed out: Registry::high_water == 2 */

/* ---- x86-TSO store buffers ---------------------------------------------- */
/* address of a plain-stored location:
 * 3*s = elocal[s], 3*s+1 = eobj[s], 3*s+2 = tbl[s] (Slot::payload) */
#define ALOC(s) (3 * (s))
#define AOBJ(s) (3 * (s) + 1)
#define ATBL(s) (3 * (s) + 2)
typedef SB {
  byte cnt;
  byte a[BUF];
  short v[BUF]
};
SB sb[NT];
byte k;      /* scratch for the d_step helpers; always left 0 */
short sc;    /* scratch */

/* ---- ghost state --------------------------------------------------------- */
/* The incarnation: bumped by reset() only. The generation is bumped by
 * reset() and by a quiet demotion (which does not end the object's life),
 * so gen == inc + quiet demotions so far. */
byte inc;
byte live[RESETS + 1];    /* live tokens of O, per incarnation */
bit killed[RESETS + 1];   /* incarnation found dead by a reclaimer */
byte liveX;               /* live tokens of X */
bit done0;
bit done1;
#ifdef DUP
/* The freeze contract: from the end of a freeze's scan until its unfreeze
 * (for ever after a kill), the live references never exceed the count the
 * scan returned (fb); NOFB while no scanned freeze is held. */
#define NOFB 100
byte fb = NOFB;
#ifndef NO_FREEZE_CONTRACT
#define FBASSERT assert(live[inc] <= fb)
#else
#define FBASSERT skip
#endif
#define FBCHK FBASSERT
#else
#define FBCHK skip
#endif

/* Tokens handed from T0 to T1 (migration): {kind, home slot, incarnation}.
 * The hand-off itself is a ghost: it does not drain T0's buffer, which
 * allows strictly more behaviours than any real hand-off. */
#ifdef DUP
chan mb = [GETS0 + DUPS0 + GETSX] of { byte, byte, byte };
/* DUP: tokens handed back from T1 to T0 (one at a time) */
chan mb1 = [1] of { byte, byte, byte };
#elif !defined(PERCPU)
chan mb = [GETS0 + GETSX] of { byte, byte, byte };
#endif                  /* PERCPU: no hand-off channel (see CpuReader) */

/* ---- helpers (only ever used inside d_step / atomic) --------------------- */
inline flush1(t) {
  printf("@ T%d store reaches memory: [slot %d, field %d (0 local, 1 obj, 2 table)] = %d\n",
         t, sb[t].a[0] / 3, sb[t].a[0] % 3, sb[t].v[0]);
  if
  :: (sb[t].a[0] % 3) == 0 -> elocal[sb[t].a[0] / 3] = sb[t].v[0]
  :: (sb[t].a[0] % 3) == 1 -> eobj[sb[t].a[0] / 3] = sb[t].v[0]
  :: else -> tbl[sb[t].a[0] / 3] = sb[t].v[0]
  fi;
  k = 1;
  do
  :: k < sb[t].cnt -> sb[t].a[k - 1] = sb[t].a[k]; sb[t].v[k - 1] = sb[t].v[k]; k++
  :: else -> break
  od;
  sb[t].cnt--;
  sb[t].a[sb[t].cnt] = 0;
  sb[t].v[sb[t].cnt] = 0;
  k = 0
}

inline drain(t) {
  do
  :: sb[t].cnt > 0 -> flush1(t)
  :: else -> break
  od
}

/* store: append to own buffer (blocks while the buffer is full) */
inline st(t, addr, val) {
  sb[t].a[sb[t].cnt] = addr;
  sb[t].v[sb[t].cnt] = val;
  sb[t].cnt++
}

/* load of a location this thread writes: own buffer first, then memory */
inline vlocal(t, s, r) {
  r = elocal[s];
  k = 0;
  do
  :: k < sb[t].cnt -> if :: sb[t].a[k] == ALOC(s) -> r = sb[t].v[k] :: else fi; k++
  :: else -> break
  od;
  k = 0
}
inline vobj(t, s, r) {
  r = eobj[s];
  k = 0;
  do
  :: k < sb[t].cnt -> if :: sb[t].a[k] == AOBJ(s) -> r = sb[t].v[k] :: else fi; k++
  :: else -> break
  od;
  k = 0
}
inline vtbl(t, s, r) {
  r = tbl[s];
  k = 0;
  do
  :: k < sb[t].cnt -> if :: sb[t].a[k] == ATBL(s) -> r = sb[t].v[k] :: else fi; k++
  :: else -> break
  od;
  k = 0
}

/* ghost: the newest value of elocal[s] anywhere (buffers or memory) */
inline latest_local(s, r) {
  vlocal(0, s, r);
  if :: r == elocal[s] -> vlocal(1, s, r) :: else fi
}

/* ghost check after every put: the entry's count is never negative
 * (DUP: nor its local, the code's unsigned count field) */
inline check_nonneg(s) {
  latest_local(s, sc);
  assert(sc + eanchor[s] >= 0);
#ifdef DUP
  assert(sc >= 0);
#endif
  sc = 0
}

/* ---- reader: Paygo::claim() for object `ob` ------------------------------
 * Sets e = 1 if the entry of `slot` now holds `ob` with local < LIMIT,
 * e = 0 if the get must fall back to the central word. Each inline is
 * expanded once per proctype, so its labels are unique. */
inline claim(ob) {
  /* get() fast path: slot->payload, e->obj, e->local (relaxed; locations
   * only this thread writes, so one step) */
  d_step { vtbl(me, slot, ov); tv = ov; vobj(me, slot, ov); vlocal(me, slot, lv) };
  if
  :: tv && ov == ob && lv < LIMIT -> e = 1
  :: else ->
     if
     :: !tv ->
        /* make_table(): entries zeroed, then payload.store(t, release)
         * (a plain store on x86: buffered) */
c_make_table:
        d_step { sb[me].cnt < BUF; st(me, ATBL(slot), 1) }
     :: else
     fi;
     /* claim(): anchor (acquire) */
c_anchor:
     av = eanchor[slot];
     if
     :: ov == ob ->
        /* saturated: fold the anchor back, anchor first, then local */
        if
        :: av < 0 ->
c_sat_fold:
           d_step { drain(me); eanchor[slot] = eanchor[slot] - av;
                    printf("@ T%d claim: saturated, fold anchor %d\n", me, av) };
c_sat_local:
           d_step { sb[me].cnt < BUF; st(me, ALOC(slot), lv + av) };
           if :: lv + av < LIMIT -> e = 1 :: else -> e = 0 fi
        :: else -> e = 0
        fi
     :: ov != ob && lv + av == 0 ->
        /* reuse a free entry: fold the anchor away, then retarget obj */
c_free_anchor:
        a2 = eanchor[slot];
        if
        :: a2 != 0 ->
c_free_fold:
           d_step { drain(me); eanchor[slot] = eanchor[slot] - a2;
                    printf("@ T%d claim: free entry, fold anchor %d\n", me, a2) };
c_free_local:
           d_step { sb[me].cnt < BUF; vlocal(me, slot, lv); st(me, ALOC(slot), lv + a2) }
        :: else
        fi;
c_retarget:
        d_step { sb[me].cnt < BUF; st(me, AOBJ(slot), ob);
                 printf("@ T%d claim: entry %d obj := %d (buffered)\n", me, slot, ob) };
        e = 1
     :: else -> e = 0  /* window full */
     fi
  fi;
  ov = 0; lv = 0; av = 0; a2 = 0; tv = 0
}

/* ---- reader: Paygo::get(cob) ----------------------------------------------
 * On success ok = 1 and {tkind, tslot, tinc} describe the token (tinc: its
 * incarnation, a ghost). For X only
 * the effect on the shared entry is modelled (claim, local + 1); X's word,
 * mask and fence are not, and X's central fallback is not modelled. */
inline get_any() {
  ok = 0;
  if
  :: cob == O ->
     /* w0 = word.load(acquire); FROZEN -> fail; not DISTRIBUTED -> central */
g_w0:
     d_step { w0f = frozen; w0d = dist; w0g = gen; w0i = inc;
              printf("@ T%d get: w0 gen=%d frozen=%d distributed=%d\n", me, w0g, w0f, w0d) }
  :: else -> w0d = 1                   /* X: always distributed */
  fi;
  if
  :: w0f -> skip                       /* FROZEN: fail */
  :: !w0f && !w0d ->
     /* get_other(): the central mode. CAS w -> w + 1 from w0, retried
      * with the reloaded word; FROZEN -> fail. One atomic step, as
      * g_central. (Its contention vote, which may promote, is the
      * Promoter's.) */
g_other:
     d_step {
       drain(me);
       if
       :: !frozen ->
          ccount++; ok = 1; tkind = CENTRAL; tslot = NOSLOT; tinc = inc;
          printf("@ T%d get: central mode, CAS count=%d\n", me, ccount);
          assert(!killed[tinc]);
          live[tinc]++; FBCHK
       :: else -> printf("@ T%d get: central mode, FROZEN: fail\n", me)
       fi
     }
  :: else ->
     if
     :: slot == NOSLOT ->
        /* Domain::current_slow(): adopt a retired slot or take a new one,
         * under the registry mutex (a locked instruction: drains) */
g_register:
        d_step {
          drain(me);
          if
          :: retired0 -> retired0 = 0; slot = 0
          :: else -> used1 = 1; slot = 1
          fi;
          owner[slot] = me + 1;
          printf("@ T%d registers: slot %d\n", me, slot)
        }
     :: else
     fi;
     claim(cob);
     if
     :: e && cob == X ->
x_inc:
        d_step { sb[me].cnt < BUF; vlocal(me, slot, l); st(me, ALOC(slot), l + 1);
                 liveX++; ok = 1 }
     :: e && cob == O ->
        /* const l = e->local.load(); e->local.store(l + 1) */
g_inc:
        d_step { sb[me].cnt < BUF; vlocal(me, slot, l); st(me, ALOC(slot), l + 1);
                 printf("@ T%d get: local[%d] := %d (buffered)\n", me, slot, l + 1) };
        /* if (!(mask.load() & group_bit)) mask.fetch_or(group_bit) */
g_mask:
        if
        :: d_step { (mask & GBIT(slot)) != 0 ->
                    printf("@ T%d get: mask=%d has the bit: skip fetch_or\n", me, mask) }
        :: else ->
g_fetch_or:
           d_step { drain(me); mask = mask | GBIT(slot);
                    printf("@ T%d get: mask.fetch_or -> %d\n", me, mask) }
        fi;
        /* light_fence() */
g_fence:
#if defined(MEMBARRIER) || defined(NO_READER_FENCE)
        skip;                          /* compiler barrier only / missing */
#else
        d_step { drain(me); printf("@ T%d get: light fence (drain)\n", me) };  /* mfence */
#endif
        /* w1 = word.load(); generation changed or FROZEN -> back off */
g_w1:
        d_step {
          if
#ifdef NO_GENERATION_CHECK
          :: frozen ->                 /* the generation is ignored */
#else
          :: gen != w0g || frozen ->
#endif
             printf("@ T%d get: w1 gen=%d frozen=%d: back off\n", me, gen, frozen)
          :: else ->
             ok = 1; tkind = DIST; tslot = slot; tinc = w0i;
             /* safety: no get succeeds on a dead incarnation */
             printf("@ T%d get: w1 gen=%d frozen=%d: SUCCESS, token on slot %d\n", me, gen, frozen, slot);
             assert(!killed[tinc]);
             live[tinc]++; FBCHK
          fi
        };
        if
        :: !ok ->
g_undo:
           d_step { sb[me].cnt < BUF; st(me, ALOC(slot), l);
                    printf("@ T%d get: undo local[%d] := %d (buffered)\n", me, slot, l) }
        :: else
        fi
     :: !e && cob == O ->
        /* get_central() -> central_tryget(): load; FROZEN -> fail; CAS
         * w -> w + 1, retried on failure. One atomic step: a failed CAS
         * re-reads, so only the successful CAS (locked: drains) matters. */
g_central:
        d_step {
          drain(me);
          if
          :: !frozen ->
             ccount++; ok = 1; tkind = CENTRAL; tslot = NOSLOT; tinc = inc;
             printf("@ T%d get: central CAS, count=%d\n", me, ccount);
             assert(!killed[tinc]);
             live[tinc]++; FBCHK
          :: else
          fi
        }
     :: else                           /* X goes central: not modelled */
     fi
  fi;
  w0f = 0; w0d = 0; w0g = 0; w0i = 0; e = 0; l = 0
}

/* ---- reader: Token::reset() ----------------------------------------------- */
inline put_tok(kind, hs, g) {
  if
  :: kind == XTOK ->
     /* put(X) by whoever holds it: home or anchor, as for O */
     if
     :: owner[hs] == me + 1 ->
px_home:
        d_step { sb[me].cnt < BUF; vlocal(me, hs, lv); st(me, ALOC(hs), lv - 1); lv = 0;
                 liveX--; check_nonneg(hs) }
     :: else ->
px_anchor:
        d_step { drain(me); eanchor[hs]--; liveX--;
                 printf("@ T%d put(X): anchor[%d] -> %d\n", me, hs, eanchor[hs]); check_nonneg(hs) }
     fi
  :: kind == CENTRAL ->
     /* central_put(): word.fetch_sub(1, release) */
p_central:
     d_step { drain(me); ccount--; live[g]--;
              printf("@ T%d put: central, count=%d\n", me, ccount); assert(ccount >= 0) }
  :: else ->
     /* home_->owner.load() == this_thread_tag() ? (only the caller can
      * make this true, so the load is folded into the put's step) */
     if
     :: owner[hs] == me + 1 ->
#ifndef DUP
        /* home put: local.store(local.load() - 1) */
p_home:
        d_step { sb[me].cnt < BUF; vlocal(me, hs, lv); st(me, ALOC(hs), lv - 1);
                 printf("@ T%d put: home, local[%d] := %d (buffered)\n", me, hs, lv - 1); lv = 0;
                 live[g]--; check_nonneg(hs) }
#else
        /* put_raw(): local_count(e.local.load()) != 0 -> home put,
         * local.store(local - 1); else the anchor. The load reads a
         * location only the caller writes, so test and store are one
         * step; the anchor branch is the locked fetch_sub of p_anchor
         * (it drains the buffer: the guard's free entry is not needed
         * but removes no behaviour, a flush being a step of its own). */
p_home:
        d_step { sb[me].cnt < BUF; vlocal(me, hs, lv);
                 if
#if defined(PUT_RAW_NO_LOCAL_TEST)
                 :: true ->                        /* broken: no local test */
#elif defined(DUP_PLAIN_PUT)
                 :: lv != 0 || kind == DIST ->     /* DIST: the plain put */
#else
                 :: lv != 0 ->
#endif
                    st(me, ALOC(hs), lv - 1);
                    printf("@ T%d put_raw (token kind %d): home, local[%d] := %d (buffered)\n", me, kind, hs, lv - 1)
                 :: else ->
                    drain(me); eanchor[hs]--;
                    printf("@ T%d put_raw: home slot but local 0: anchor[%d] -> %d\n", me, hs, eanchor[hs])
                 fi;
                 lv = 0; live[g]--; check_nonneg(hs) }
#endif
     :: else ->
        /* migration tax: anchor.fetch_sub(1) (locked: drains) */
p_anchor:
        d_step { drain(me); eanchor[hs]--; live[g]--;
                 printf("@ T%d put: anchor[%d] -> %d\n", me, hs, eanchor[hs]); check_nonneg(hs) }
     fi
  fi
}

#ifdef DUP
/* ---- reader: dup_raw(token), a second reference through a live token ----
 * The caller holds token {kind, hs, g} of O. Uses the caller's dw. */
inline dup_tok(kind, hs, g) {
  if
  :: kind == CENTRAL ->
     /* a central get: central_tryget()'s CAS +1, which refuses FROZEN
      * (waits and retries while frozen; one atomic step, as g_central).
      * It never waits: a freeze needs a central count of 0 and the
      * caller's central token is in it. */
dc_cas:
     d_step { assert(!frozen); drain(me); ccount++;
              printf("@ T%d dup: central CAS, count=%d\n", me, ccount);
              assert(!killed[g]); live[g]++; FBCHK }
  :: else ->
     /* distributed: e.anchor.fetch_add(1), light_fence(), w = word.load();
      * FROZEN -> back off (anchor -1) and wait until unfrozen, retry */
     do
     ::
#if defined(DUP_NO_FENCE)
        /* broken (not x86): the word load is satisfied before the RMW's
         * store reaches memory */
dd_w_early:
        d_step { dw = frozen; printf("@ T%d dup: word load (early) frozen=%d\n", me, dw) };
dd_add:
        d_step { drain(me); eanchor[hs]++;
                 printf("@ T%d dup: anchor[%d] -> %d\n", me, hs, eanchor[hs]);
                 if
                 :: !dw -> assert(!killed[g]); live[g]++; FBCHK;
                           printf("@ T%d dup: SUCCESS, token on slot %d\n", me, hs)
                 :: else
                 fi }
#else
        /* fetch_add (locked: drains the buffer, acts on memory) */
dd_add:
        d_step { drain(me); eanchor[hs]++;
                 printf("@ T%d dup: anchor[%d] -> %d\n", me, hs, eanchor[hs]) };
#if defined(DUP_NO_FROZEN_CHECK)
        d_step { dw = 0; assert(!killed[g]); live[g]++; FBCHK;
                 printf("@ T%d dup: BROKEN, no frozen check: token on slot %d\n", me, hs) };
#else
        /* light_fence(): seq_cst: mfence, nothing left to drain after the
         * locked RMW; membarrier: a compiler barrier. Then the word load. */
dd_w:
        d_step {
          if
          :: frozen -> dw = 1; printf("@ T%d dup: word frozen: back off\n", me)
          :: else -> dw = 0; assert(!killed[g]); live[g]++; FBCHK;
                     printf("@ T%d dup: word not frozen: SUCCESS, token on slot %d\n", me, hs)
          fi };
#endif
#endif
        if
        :: !dw -> break
        :: else ->
           /* back off: anchor.fetch_sub(1, release) */
dd_back:
           d_step { drain(me); eanchor[hs]--; dw = 0;
                    printf("@ T%d dup: back off, anchor[%d] -> %d\n", me, hs, eanchor[hs]) };
           /* wait until the word is not frozen (the caller's reference
            * keeps O alive, so the freezer unfreezes) */
dd_wait:
           !frozen
        fi
     od
  fi
}
#endif

#ifndef PERCPU
/* ---- T0: reader with slot 0, migrates tokens, reuses its entry, exits ---- */
proctype T0() {
  byte me = 0;
  byte slot = 0;
  bit ok, e, w0f, w0d, tv;
  byte cob, w0g, w0i, ov, tkind, tslot, tinc, nO, nX;
  short l, lv, av, a2;
  bit hX;  /* holds a token of X */
  byte pk, ps, pg;  /* token being put */
#ifdef DUP
  byte npend;       /* references held through token {pk, ps, pg} */
  byte nd;          /* dups done */
  bit dw, rcv;      /* dup's word load; the token came back from T1 */

  do
  :: npend == 0 && (nO < GETS0 || (nX < GETSX && !hX)) ->
     if
     :: nO < GETS0 -> nO++; cob = O
     :: nX < GETSX && !hX -> nX++; cob = X
     fi;
     get_any();
     if
     :: ok && cob == X ->
        if
        :: hX = 1                                 /* keep it, put at home */
        :: mb!XTOK, slot, 0                       /* migrate to T1 */
        fi
     :: ok && cob == O -> pk = tkind; ps = tslot; pg = tinc; npend = 1
     :: else
     fi;
     ok = 0; tkind = 0; tslot = 0; tinc = 0; cob = 0
  :: npend == 0 && nempty(mb1) ->
     mb1?pk, ps, pg; npend = 1; rcv = 1           /* a reference T1 handed back */
  :: npend > 0 ->
     /* each reference held: dup it (once), put it (put_raw) or hand it to
      * T1 (not one T1 handed back) */
     if
     :: nd < DUPS0 && npend == 1 ->
        nd++;
        dup_tok(pk, ps, pg);
#ifdef DUP_PLAIN_PUT
        if :: pk == DIST -> pk = DISTD :: else fi;
#endif
        npend = 2
     :: npend--; put_tok(pk, ps, pg)
     :: !rcv -> npend--; mb!pk, ps, pg
     fi;
     if :: npend == 0 -> pk = 0; ps = 0; pg = 0; rcv = 0 :: else fi
  :: npend == 0 && hX ->
     /* put(X): a home put, local.store(local.load() - 1) */
x_put:
     d_step { sb[me].cnt < BUF; vlocal(me, slot, lv); st(me, ALOC(slot), lv - 1); lv = 0;
              liveX--; hX = 0; check_nonneg(slot) }
  :: /* thread exit, as below; atomic with the test that T1 has handed
      * nothing back (T1 hands back only while done0 is clear) */
t0_exit:
     atomic { npend == 0 && !hX && empty(mb1) ->
              drain(me); owner[0] = 0; retired0 = 1; done0 = 1; printf("@ T0 exits: slot 0 retired\n") };
     break
  od
}
#else

  do
  :: nO < GETS0 || (nX < GETSX && !hX) ->
     if
     :: nO < GETS0 -> nO++; cob = O
     :: nX < GETSX && !hX -> nX++; cob = X
     fi;
     get_any();
     if
     :: ok && cob == X ->
        if
        :: hX = 1                                 /* keep it, put at home */
        :: mb!XTOK, slot, 0                       /* migrate to T1 */
        fi
     :: ok && cob == O ->
        if
        :: pk = tkind; ps = tslot; pg = tinc;
           put_tok(pk, ps, pg);                  /* put at home */
           pk = 0; ps = 0; pg = 0
        :: mb!tkind, tslot, tinc                  /* migrate to T1 */
        fi
     :: else
     fi;
     ok = 0; tkind = 0; tslot = 0; tinc = 0; cob = 0
  :: hX ->
     /* put(X): a home put, local.store(local.load() - 1) */
x_put:
     d_step { sb[me].cnt < BUF; vlocal(me, slot, lv); st(me, ALOC(slot), lv - 1); lv = 0;
              liveX--; hX = 0; check_nonneg(slot) }
  :: !hX -> break
  od;
  /* thread exit: ~ThreadSlots retires the slot under the registry mutex */
t0_exit:
  atomic { drain(me); owner[0] = 0; retired0 = 1; done0 = 1; printf("@ T0 exits: slot 0 retired\n") }  /* d_step: no jump target */
}
#endif

/* ---- T1: reader without a slot; puts T0's migrated tokens ---------------- */
proctype T1() {
  byte me = 1;
  byte slot = NOSLOT;
  bit ok, e, w0f, w0d, tv;
  byte cob = O;
  byte w0g, w0i, ov, tkind, tslot, tinc, n;
  short l, lv, av, a2;
  bit h;                 /* holds its own token */
  byte hk, hs, hg;       /* its own token */
  byte pk, ps, pg;       /* token being put */
#ifdef DUP
  byte npend;            /* references held through token {pk, ps, pg} */
  byte nd;               /* dups done */
  bit dw;                /* dup's word load */

end_t1:
  do
  :: npend == 0 && n < GETS1 && !h ->
     n++;
     get_any();
     if
     :: ok -> h = 1; hk = tkind; hs = tslot; hg = tinc
     :: else
     fi;
     ok = 0; tkind = 0; tslot = 0; tinc = 0
  :: npend == 0 && (h || nempty(mb)) ->
     if
     :: h -> pk = hk; ps = hs; pg = hg; h = 0; hk = 0; hs = 0; hg = 0
     :: mb?pk, ps, pg                             /* a migrated token */
     fi;
     npend = 1
  :: npend > 0 ->
     /* each reference held: dup it (once; not X), put it (put_raw), or
      * hand it back to T0 while T0 runs */
     if
     :: nd < DUPS1 && npend == 1 && pk != XTOK ->
        nd++;
        dup_tok(pk, ps, pg);
#ifdef DUP_PLAIN_PUT
        if :: pk == DIST -> pk = DISTD :: else fi;
#endif
        npend = 2
     :: npend--; put_tok(pk, ps, pg)
     :: atomic { pk != XTOK && !done0 && empty(mb1) -> npend--; mb1!pk, ps, pg }
     fi;
     if :: npend == 0 -> pk = 0; ps = 0; pg = 0 :: else fi
  :: npend == 0 && done0 && empty(mb) -> break  /* may end holding its own token */
  od;
  done1 = 1
}
#else

end_t1:
  do
  :: n < GETS1 && !h ->
     n++;
     get_any();
     if
     :: ok -> h = 1; hk = tkind; hs = tslot; hg = tinc
     :: else
     fi;
     ok = 0; tkind = 0; tslot = 0; tinc = 0
  :: h || nempty(mb) ->
     if
     :: h -> pk = hk; ps = hs; pg = hg; h = 0; hk = 0; hs = 0; hg = 0
     :: mb?pk, ps, pg                             /* a migrated token */
     fi;
     put_tok(pk, ps, pg);
     pk = 0; ps = 0; pg = 0
  :: done0 && empty(mb) -> break  /* may end holding its own token */
  od;
  done1 = 1
}
#endif
#else /* PERCPU: CpuReader replaces T0 and T1 */

/* ---- PERCPU: readers on a per-CPU table ------------------------------------
 * One table per CPU; entry `slot` of CPU `slot`'s table (probe window 1) is
 * shared by every thread that runs there, so it is written with locked
 * RMWs only (the claim's final obj store aside) and any of them may be
 * preempted between any two steps. The count lives in anchor; local's
 * count bits stay 0 (local only carries the use counter, not modelled:
 * elocal stays 0). No owner, no registration, no home put. */

/* ---- reader, PERCPU: claim of a free entry for `ob` -----------------------
 * ov is the obj value step 1 read (P: another object, null, or tagged).
 * Sets e = 1 if the entry now names ob (our obj store may still be in our
 * buffer), e = 0 if the claim gave up (the get falls back to the central
 * word; X's fallback is not modelled). */
inline cpu_claim(ob) {
  e = 0;                               /* not claimed (yet) */
  /* free test: anchor.load(acquire) == 0; a tagged obj is another
   * thread's claim under way, and the CAS below would fail on it */
pc_free:
  d_step { av = eanchor[slot]; printf("@ T%d claim: free test, obj %d anchor %d\n", me, ov, av) };
  if
  :: av != 0 || ov >= TAG -> e = 0     /* not free: window full */
  :: else ->
#ifdef PERCPU_PLAIN_CLAIM
     /* broken: obj := ob with a plain store right after the free test; no
      * tag, no anchor re-check */
pc_plain_store:
     d_step { sb[me].cnt < BUF; st(me, AOBJ(slot), ob);
              printf("@ T%d claim: BROKEN, entry %d obj := %d (plain, buffered)\n", me, slot, ob) };
     e = 1
#else
     /* a: obj.compare_exchange_strong(P, P | TAG) (seq_cst; locked:
      * drains). It fails if obj is no longer the P step 1 read. */
pc_tag:
     d_step { drain(me);
              if
              :: eobj[slot] == ov -> eobj[slot] = ov + TAG; e = 1
              :: else -> e = 0
              fi;
              printf("@ T%d claim: CAS obj %d -> %d: %d (obj now %d)\n", me, ov, ov + TAG, e, eobj[slot]) };
     if
     :: e ->
        /* b: anchor.load(seq_cst); the store-buffer partner of a
         * getter's anchor + 1 and obj re-load */
pc_tag_anchor:
        d_step { av = eanchor[slot]; printf("@ T%d claim: anchor after the tag %d\n", me, av) };
        if
        :: av != 0 ->
           /* a getter got in: CAS obj P | TAG -> P and give up (a tagged
            * obj is changed by its tagger only, so the CAS succeeds) */
pc_untag:
           d_step { drain(me); assert(eobj[slot] == ov + TAG); eobj[slot] = ov; e = 0;
                    printf("@ T%d claim: untag, obj %d, give up\n", me, ov) }
        :: else ->
           /* c: obj.store(ob, release): a plain store, buffered */
pc_store:
           d_step { sb[me].cnt < BUF; st(me, AOBJ(slot), ob);
                    printf("@ T%d claim: entry %d obj := %d (buffered)\n", me, slot, ob) }
        fi
     :: else
     fi
#endif
  fi;
  av = 0                               /* scratch back to 0 */
}

/* ---- reader, PERCPU: the per-CPU get of cob on the entry of `slot` -------
 * On success ok = 1 and {tkind, tslot, tinc} describe the token. For X only
 * the entry's part is modelled (steps 1-3, claim); X's word, mask and
 * fence are not, nor X's central fallback (as in get_any). */
inline cpu_get() {
  ok = 0;
  if
  :: cob == O ->
     /* w0 = word.load(acquire); FROZEN -> fail (always DISTRIBUTED) */
pc_w0:
     d_step { w0f = frozen; w0g = gen; w0i = inc;
              printf("@ T%d get (CPU %d): w0 gen=%d frozen=%d\n", me, slot, w0g, w0f) }
  :: else
  fi;
  if
  :: w0f -> skip                       /* FROZEN: fail */
  :: else ->
     rt = 0;                           /* retries so far */
     /* 1: e.obj.load(seq_cst) (own buffer first) */
pc_obj:
     do
     :: d_step { vobj(me, slot, ov); printf("@ T%d get: obj %d\n", me, ov) };
        if
        :: ov == cob -> e = 1
        :: else -> cpu_claim(cob)      /* sets e */
        fi;
        if
        :: !e -> break                 /* claim gave up: central */
        :: else ->
           /* 2: anchor.fetch_add(1) (seq_cst; locked: drains, so a claim's
            * obj store is in memory before the + 1) */
pc_add:
           d_step { drain(me); eanchor[slot]++;
                    printf("@ T%d get: anchor[%d] + 1 -> %d\n", me, slot, eanchor[slot]) };
#ifndef PERCPU_NO_RECHECK
           /* 3: e.obj.load(seq_cst) again: not exactly cob (another
            * object, or tagged: a claim under way) -> back off */
pc_reobj:
           d_step { vobj(me, slot, ov); printf("@ T%d get: obj re-load %d\n", me, ov) };
           if
           :: ov == cob -> break       /* counted on this entry */
           :: else ->
              /* anchor.fetch_sub(1); retry from 1 (RETRIES times) or go
               * central */
pc_back_obj:
              d_step { drain(me); eanchor[slot]--; e = 0;
                       printf("@ T%d get: obj changed: anchor[%d] - 1 -> %d\n", me, slot, eanchor[slot]) };
              if
              :: rt < RETRIES -> rt++  /* retry from 1 */
              :: else -> break         /* central */
              fi
           fi
#else
           break                       /* broken: no re-load */
#endif
        fi
     od;
     rt = 0;                           /* e = 1: counted on the entry */
     if
     :: e && cob == X ->
        /* ghost: X's token (its word is not modelled) */
        d_step { liveX++; ok = 1; tkind = XTOK; tslot = slot }
     :: e && cob == O ->
        /* 4: if (!(mask.load() & group_bit)) mask.fetch_or(group_bit) */
pc_mask:
        if
        :: d_step { (mask & GBIT(slot)) != 0 ->
                    printf("@ T%d get: mask=%d has the bit: skip fetch_or\n", me, mask) }
        :: else ->
pc_fetch_or:
           d_step { drain(me); mask = mask | GBIT(slot);
                    printf("@ T%d get: mask.fetch_or -> %d\n", me, mask) }
        fi;
        /* 5: light_fence(): seq_cst: mfence, with nothing left to drain
         * after the locked RMWs; membarrier: a compiler barrier. No step.
         * w1 = word.load(seq_cst); generation changed or FROZEN -> back
         * off */
pc_w1:
        d_step {
          if
          :: gen != w0g || frozen ->
             printf("@ T%d get: w1 gen=%d frozen=%d: back off\n", me, gen, frozen)
          :: else ->
             ok = 1; tkind = DIST; tslot = slot; tinc = w0i;
             /* safety: no get succeeds on a dead incarnation */
             printf("@ T%d get: w1 gen=%d frozen=%d: SUCCESS, token on entry %d\n", me, gen, frozen, slot);
             assert(!killed[tinc]);
             live[tinc]++
          fi
        };
        if
        :: !ok ->
           /* back off: anchor.fetch_sub(1) (locked) */
pc_undo:
           d_step { drain(me); eanchor[slot]--;
                    printf("@ T%d get: undo, anchor[%d] - 1 -> %d\n", me, slot, eanchor[slot]) }
        :: else
        fi
     :: !e && cob == O ->
        /* get_central() -> central_tryget(), as g_central */
pc_central:
        d_step {
          drain(me);
          if
          :: !frozen ->
             ccount++; ok = 1; tkind = CENTRAL; tslot = NOSLOT; tinc = inc;
             printf("@ T%d get: central CAS, count=%d\n", me, ccount);
             assert(!killed[tinc]);
             live[tinc]++
          :: else
          fi
        }
     :: else                           /* X goes central: not modelled */
     fi
  fi;
  w0f = 0; w0g = 0; w0i = 0; e = 0; ov = 0  /* locals back to 0 */
}

/* ---- PERCPU: reader thread Tme on the CPU tables ---------------------------
 * Up to getsO gets of O and getsX of X, holding at most one token of each
 * at a time; each token may be put at any later point. A put is
 * anchor.fetch_sub(1, release) on the token's entry from whichever thread
 * and CPU holds the token, the same locked RMW everywhere, so migration
 * between get and put (and a token handed to another thread) is this put
 * at some later step: no hand-off channel. T0 stays on CPU 0; T1 runs
 * each get on CPU 0 or (CPUS=2) CPU 1, so it also migrates between gets. */
proctype CpuReader(byte me; byte getsO; byte getsX) {
  byte slot;               /* the CPU this thread runs its get on */
  bit ok, e, w0f;
  byte cob, w0g, w0i, ov, tkind, tslot, tinc, nO, nX, rt;
  short av;
  bit h;                   /* holds a token of O ... */
  byte hk, hs, hg;         /* ... of kind hk, on entry hs, incarnation hg */
  bit hX;                  /* holds a token of X ... */
  byte xe;                 /* ... on entry xe */

  do
  :: (!h && nO < getsO) || (!hX && nX < getsX) ->
     if
     :: !h && nO < getsO -> nO++; cob = O
     :: !hX && nX < getsX -> nX++; cob = X
     fi;
#if CPUS > 1
     /* the scheduler picks T1's CPU for this get */
     if
     :: me == 1 -> if :: slot = 0 :: slot = 1 fi
     :: else
     fi;
#endif
     cpu_get();
     if
     :: ok && cob == O -> h = 1; hk = tkind; hs = tslot; hg = tinc
     :: ok && cob == X -> hX = 1; xe = tslot
     :: else
     fi;
     ok = 0; tkind = 0; tslot = 0; tinc = 0; cob = 0
  :: h && hk == CENTRAL ->
     /* central_put(): word.fetch_sub(1, release) */
pc_put_central:
     d_step { drain(me); ccount--; live[hg]--; h = 0; hk = 0; hg = 0;
              printf("@ T%d put: central, count=%d\n", me, ccount); assert(ccount >= 0) }
  :: h && hk == DIST ->
     /* put: anchor.fetch_sub(1, release) on the token's entry (locked) */
pc_put:
     d_step { drain(me); eanchor[hs]--; live[hg]--;
              printf("@ T%d put: anchor[%d] - 1 -> %d\n", me, hs, eanchor[hs]);
              check_nonneg(hs); h = 0; hk = 0; hs = 0; hg = 0 }
  :: hX ->
     /* put(X): the same anchor.fetch_sub(1, release) */
pc_put_x:
     d_step { drain(me); eanchor[xe]--; liveX--;
              printf("@ T%d put(X): anchor[%d] - 1 -> %d\n", me, xe, eanchor[xe]);
              check_nonneg(xe); hX = 0; xe = 0 }
  :: nO == getsO && nX == getsX && !hX ->
     break                           /* may end holding its token of O */
  od;
  /* thread exit: nothing to retire (the CPU tables stay) */
pc_exit:
  atomic { drain(me); if :: me == 0 -> done0 = 1 :: else -> done1 = 1 fi;
           printf("@ T%d exits\n", me) }  /* d_step: no jump target */
}
#endif /* PERCPU */

/* ---- the scan of a frozen O's entries -------------------------------------
 * sum_masked() (the slots of the groups in m) or, with m = 255,
 * scan_tables() (every entry of every table). Sets sum; uses the caller's
 * m, s, hw, t, o, gs; `who` names the caller in the trail. rc = 1 in the
 * reclaimer (BROKEN_GROUP_RULE's clear is the seed's query rule).
 * Expanded once per proctype, so its labels are unique. */
inline scan(rc, who) {
  sum = 0;
  /* hw = domain_.high_water() (acquire) */
r_hw:
  hw = (used1 -> 2 : 1);
  s = 0;
  do
  :: s < NS ->
     gs = 0;
     if
     :: (m & GBIT(s)) != 0 && s < hw ->
        /* t = slot(s).payload.load(acquire); nullptr -> next slot */
r_table:
        t = tbl[s];
r_obj:
        d_step { o = (t -> eobj[s] : NOOBJ); printf("@ %c slot %d: table %d obj %d\n", who, s, t, o) };
        if
#if defined(PERCPU) && !defined(PERCPU_SCAN_IGNORES_TAG)
        /* PERCPU: the tag stripped, obj O | TAG (a claim of O's entry
         * under way) counts for O too */
        :: o == O || o == O + TAG ->
#else
        :: o == O ->                   /* (PERCPU_SCAN_IGNORES_TAG: broken) */
#endif
#ifndef PERCPU
r_local:
           d_step { gs = gs + elocal[s]; printf("@ %c slot %d: local %d\n", who, s, elocal[s]) };
#endif                                 /* PERCPU: local counts 0, no step */
r_anchor:
           d_step { gs = gs + eanchor[s]; printf("@ %c slot %d: anchor %d\n", who, s, eanchor[s]) };
#ifndef NO_CLAMP
           /* entry_count(): a negative entry sum is another object's */
r_clamp:
           if :: gs < 0 -> gs = 0 :: else fi
#else
           skip
#endif
        :: else
        fi
     :: else
     fi;
#ifdef BROKEN_GROUP_RULE
     /* the seed: clear the group's bit when its count reads 0 */
     if
#ifdef SHARED_GROUP
     :: rc && (m & GBIT(s)) != 0 && s == NS - 1 && sum + gs == 0 ->
#else
     :: rc && (m & GBIT(s)) != 0 && gs == 0 ->
#endif
r_broken_clear:
        d_step { mask = mask & ~GBIT(s); printf("@ R BROKEN rule: clear bit, mask = %d\n", mask) }
     :: else
     fi;
#endif
     sum = sum + gs;
     s++
  :: else -> break
  od;
  o = 0; gs = 0; s = 0; m = 0; hw = 0; t = 0;
  /* counts never negative: a scan after the fence never reads < 0
   * (not asserted for NO_CLAMP, whose check is the harm it does:
   * the reclaim of a live object) */
#ifndef NO_CLAMP
  assert(sum >= 0)
#else
  skip
#endif
}

/* ---- Reclaimer: try_reclaim / reclaim_batch, then reset ------------------ */
proctype Reclaimer() {
  byte att, nres, m, s, hw;
  bit t;
  bit kd;      /* declared O dead in this attempt */
  short sum, gs;
  bit fz;
  byte o;

  do
  :: att < ATTEMPTS ->
     att++;
#ifdef SKIP_MASK_FIRST
     /* broken: the mask read before the freeze */
r_mask_first:
     d_step { m = mask; printf("@ R BROKEN: mask (before the freeze) = %d\n", m) };
#endif
     /* freeze_dead_sc(): CAS {count 0, !FROZEN} -> FROZEN | DEAD (locked,
      * seq_cst). DEAD is the verdict of the empty-mask case; nobody acts
      * on it while FROZEN is set (a promotion refuses FROZEN too). */
r_freeze:
     d_step {
       if
       :: ccount == 0 && !frozen -> frozen = 1; dead = 1; fz = 1
       :: else -> fz = 0
       fi;
       printf("@ R freeze (gen %d): frozen by us = %d\n", gen, fz)
     };
     if
     :: fz ->
#ifndef SKIP_MASK_FIRST
        /* mask_.load(seq_cst) right after the freeze (a plain load); not
         * 0 -> undead(): fetch_and(~DEAD), merged into this step (DEAD is
         * invisible while FROZEN) */
r_mask0:
        d_step { m = mask; if :: m != 0 -> dead = 0 :: else fi;
                 printf("@ R mask after the freeze = %d\n", m) };
#else
        d_step { if :: m != 0 -> dead = 0 :: else fi };
#endif
        if
        :: m == 0 ->
           /* empty mask: dead already (the freeze wrote DEAD); no fence,
            * no scan, no mask store */
r_dead_empty:
           d_step {
             /* safety: dead only if no token of this incarnation is live */
             printf("@ R empty mask: DEAD (inc %d, gen %d), no fence, no scan; live tokens of inc %d: %d\n", inc, gen, inc, live[inc]);
             assert(live[inc] == 0);
             killed[inc] = 1;
             kd = 1
           }
        :: else ->
           /* heavy_fence() */
r_heavy:
#if defined(MEMBARRIER) && !defined(NO_HEAVY_FENCE)
           d_step { drain(0); drain(1); printf("@ R heavy fence: all buffers drained\n") };
#else
           skip;                         /* seq_cst fence after a locked CAS */
#endif
           /* sum_masked(): mask reloaded (relaxed); reclaim_batch's
            * scan_tables() ignores it */
r_mask:
#ifdef BATCH
           m = 255;
#else
           d_step { m = mask; printf("@ R mask = %d\n", m) };
#endif
           scan(1, 'R');
#ifdef DUP
           /* ghost: the scan did not undercount; the freeze contract
            * starts (no reference born until the unfreeze) */
r_scanned:
           d_step { fb = sum + ccount;
                    printf("@ R scan done: sum %d, live tokens of inc %d: %d\n", sum, inc, live[inc]);
                    FBASSERT };
#endif
           if
           :: sum != 0 ->
              /* busy: central_unfreeze() */
r_unfreeze:
              d_step { frozen = 0;
#ifdef DUP
                       FBASSERT; fb = NOFB;
#endif
                       printf("@ R sum %d: busy, unfreeze\n", sum) }
           :: else ->
              /* kill(): mask_.store(0); word.fetch_or(DEAD) */
r_kill:
              d_step {
                /* safety: dead only if no token of this incarnation is live */
                printf("@ R sum 0: DEAD (inc %d, gen %d), mask = 0; live tokens of inc %d: %d\n", inc, gen, inc, live[inc]);
                assert(live[inc] == 0);
                killed[inc] = 1;
                mask = 0;
                dead = 1;
                kd = 1
              }
           fi
        fi;
        m = 0; sum = 0; fz = 0;
        if
        :: kd && nres < RESETS ->
           /* reset(): count 0, generation + 1, clear FROZEN/DEAD; an
            * automatic object (TUNE) starts central again */
r_reset:
           d_step { nres++; gen++; inc++; frozen = 0; dead = 0; kd = 0;
#ifdef DUP
                    fb = NOFB;
#endif
#ifdef TUNE
                    dist = 0;
#endif
                    printf("@ R reset: gen %d, inc %d\n", gen, inc) }
        :: kd -> kd = 0                   /* or no reset */
        :: else                           /* busy */
        fi
     :: else -> m = 0
     fi
  :: else -> break
  od;

  /* quiescence: every reader done, every buffer drained */
r_final:
  (done0 && done1 && sb[0].cnt == 0 && sb[1].cnt == 0);
  d_step {
    /* no lost count: the true count of O is its live tokens; X's and
     * free entries count 0; no entry is negative */
    sc = ccount;
    s = 0;
    do
    :: s < NS ->
       assert(elocal[s] + eanchor[s] >= 0);
#ifdef PERCPU
       assert(eobj[s] < TAG);          /* no claim left half done */
#endif
       if
       :: eobj[s] == O -> sc = sc + elocal[s] + eanchor[s]
       :: else -> assert(elocal[s] + eanchor[s] == 0)  /* X: liveX == 0 here */
       fi;
       s++
    :: else -> break
    od;
    assert(liveX == 0);
    assert(sc == live[inc]);
    s = 0;
    do
    :: s < inc -> assert(live[s] == 0); s++
    :: else -> break
    od;
    sc = 0; s = 0
  }
}

#ifdef TUNE
/* ---- Promoter: promote() -------------------------------------------------
 * CAS word -> word | DISTRIBUTED unless PINNED, DISTRIBUTED, FROZEN or
 * DEAD (relaxed; locked on x86). Only the promotions that change the word
 * are steps (a refused one does nothing); PROMOTES bounds them. */
proctype Promoter() {
  byte np;
end_promote:
  do
  :: d_step { np < PROMOTES && !dist && !frozen && !dead ->
              np++; dist = 1; printf("@ P promote: DISTRIBUTED (gen %d)\n", gen) }
  :: np == PROMOTES -> break
  od
}

/* ---- Demoter: sweep() -> demote() / clear_distributed() -------------------
 * The use signatures that decide "quiet for demote_sweeps sweeps" are a
 * heuristic, not modelled: any sweep may find O quiet. */
proctype Demoter() {
  byte nd, m, s, hw;
  bit t;
  short sum, gs;
  bit fz;
  byte o;

end_sweep:
  do
  :: d_step { nd < DEMOTES && dist && !frozen ->
              /* sweep(): w = word.load(relaxed); DISTRIBUTED, not PINNED,
               * not FROZEN -> a candidate */
              nd++; printf("@ D sweep: O is a candidate (gen %d)\n", gen) } ->
     /* freeze_sc(): the reclaim's freeze CAS */
d_freeze:
     d_step {
       if
       :: ccount == 0 && !frozen -> frozen = 1; fz = 1
       :: else -> fz = 0
       fi;
       printf("@ D freeze (gen %d): frozen by us = %d\n", gen, fz)
     };
     if
     :: fz ->
        /* heavy_fence(): one per sweep batch */
d_heavy:
#if defined(MEMBARRIER)
        d_step { drain(0); drain(1); printf("@ D heavy fence: all buffers drained\n") };
#else
        skip;                            /* seq_cst fence after a locked CAS */
#endif
#ifdef DEMOTE_NO_SCAN
d_no_scan:
        d_step { sum = 0; printf("@ D BROKEN: no scan, taken as quiet\n") };
#else
        /* scan_tables(): every entry of every table, mask ignored */
        m = 255;
        scan(0, 'D');
#ifdef DUP
d_scanned:
        d_step { fb = sum + ccount;
                 printf("@ D scan done: sum %d, live tokens of inc %d: %d\n", sum, inc, live[inc]);
                 FBASSERT };
#endif
#endif
        if
        :: sum == 0 ->
           /* demote(quiet): mask_.store(0) ... */
d_clear_mask:
           d_step {
             printf("@ D quiet: mask = 0; live tokens of inc %d: %d\n", inc, live[inc]);
#ifndef DEMOTE_NO_SCAN
             /* safety: a quiet demotion only with no token live (no
              * central one: frozen at count 0; no distributed one: the
              * fenced scan would have counted it). Not asserted for
              * DEMOTE_NO_SCAN, whose check is the reclaim it makes wrong. */
             assert(live[inc] == 0);
#endif
             mask = 0
           };
           /* ... then CAS: clear FROZEN and DISTRIBUTED, generation + 1 */
d_quiet:
           d_step { frozen = 0; dist = 0;
#ifdef DUP
                    FBASSERT; fb = NOFB;
#endif
#ifndef DEMOTE_NO_GEN
                    gen++;
#endif
                    printf("@ D quiet demotion: central, unfrozen, gen %d\n", gen) }
        :: else ->
           /* demote(busy): CAS: clear FROZEN and DISTRIBUTED only */
d_busy:
           d_step { frozen = 0; dist = 0;
#ifdef DUP
                    FBASSERT; fb = NOFB;
#endif
                    printf("@ D sum %d: busy demotion: central, unfrozen, mask kept\n", sum) }
        fi;
        sum = 0; fz = 0
     :: else ->
        /* clear_distributed(): CAS clearing DISTRIBUTED (not PINNED) */
d_clear_dist:
        d_step { dist = 0; printf("@ D freeze failed: clear_distributed\n") }
     fi
  :: nd == DEMOTES -> break
  od
}
#endif

/* ---- TSO: buffered stores reach memory in order, at any time ------------- */
proctype Flusher() {
end_flush:
  do
  :: d_step { sb[0].cnt > 0 -> flush1(0) }
  :: d_step { sb[1].cnt > 0 -> flush1(1) }
  od
}

init {
  atomic {
#ifndef PERCPU
    owner[0] = 1;  /* T0 registered slot 0 */
    run Flusher();
    run T0();
    run T1();
#else
    /* PERCPU: the CPU tables exist from the start, unowned; the scans
     * cover CPUS of them (high_water) */
    tbl[0] = 1;
#if CPUS > 1
    tbl[1] = 1; used1 = 1;
#endif
    run Flusher();
    run CpuReader(0, GETS0, GETSX);  /* T0: gets O and X on CPU 0 */
    run CpuReader(1, GETS1, GETSX1); /* T1: gets O (and X) on CPU 0 (or 1) */
#endif
#ifdef TUNE
#ifdef PROMOTED
    dist = 1;      /* automatic, already promoted */
#endif
    run Promoter();
    run Demoter();
#else
    dist = 1;      /* pinned distributed */
#endif
    run Reclaimer()
  }
}
