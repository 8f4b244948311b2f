#include "sched/m.h"

#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "stackalloc.h"
#include "testing/test_helpers.h"

namespace stackalloc {
namespace {

using testing_util::AllocAndFreeEveryOrder;
using testing_util::RunThreads;

std::vector<M*> WalkAllm() {
  std::vector<M*> ms;
  for (M* m = allm(); m != nullptr; m = m->alllink()) ms.push_back(m);
  return ms;
}

// Runs first (gtest keeps declaration order within a file and this is the
// only test that registers Ms before it), so ids start at 0.
TEST(MTest, SixtyFourThreadsRegisterAtOnceWhileAReaderWalks) {
  ASSERT_EQ(mcount(), 0);
  ASSERT_EQ(allm(), nullptr);
  constexpr int kThreads = 64;
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::atomic<bool> done{false};
  std::atomic<int> registered{0};
  std::vector<M*> ms(kThreads);

  // The reader walks allm continuously; every walk must see distinct, fully
  // initialised Ms and never more than have registered.
  std::atomic<int64_t> walks{0};
  std::thread reader([&] {
    while (!done.load(std::memory_order_acquire)) {
      std::set<int64_t> ids;
      int32_t upper = mcount();
      for (M* m = allm(); m != nullptr; m = m->alllink()) {
        ASSERT_GE(m->id(), 0);
        ASSERT_LT(m->id(), kThreads);
        ASSERT_EQ(m->fastrand(), 0x49f6428aU + m->id());
        ASSERT_EQ(m->stats.orders[0], &m->mcache.stackcache.c[0].stats);
        ASSERT_TRUE(ids.insert(m->id()).second) << "M twice on allm";
      }
      ASSERT_LE(static_cast<int32_t>(ids.size()), std::max(upper, mcount()));
      walks.fetch_add(1, std::memory_order_relaxed);
    }
  });

  // The reader is walking before the threads start (else the walks could
  // all come after they bound, or none happen).
  EXPECT_TRUE(testing_util::WaitUntil([&] { return walks.load() > 0; }));

  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      ready.fetch_add(1);
      while (!go.load(std::memory_order_acquire)) {
      }
      ms[i] = getm();
      EXPECT_EQ(getm(), ms[i]);  // Bound once per thread.
      // Stay alive until all have registered, or exited threads' Ms would
      // be reused.
      registered.fetch_add(1);
      while (registered.load() != kThreads) std::this_thread::yield();
    });
  }
  while (ready.load() != kThreads) std::this_thread::yield();
  go.store(true, std::memory_order_release);
  for (auto& t : threads) t.join();
  done.store(true, std::memory_order_release);
  reader.join();

  EXPECT_EQ(mcount(), kThreads);
  std::set<int64_t> ids;
  for (M* m : ms) ids.insert(m->id());
  ASSERT_EQ(ids.size(), static_cast<size_t>(kThreads));
  EXPECT_EQ(*ids.begin(), 0);
  EXPECT_EQ(*ids.rbegin(), kThreads - 1);

  std::vector<M*> listed = WalkAllm();
  EXPECT_EQ(listed.size(), static_cast<size_t>(kThreads));
  EXPECT_EQ(std::set<M*>(listed.begin(), listed.end()),
            std::set<M*>(ms.begin(), ms.end()));
  EXPECT_GT(walks.load(), 0);
}

TEST(MTest, ExitedThreadsMsAreReusedOnTheNewThreadsStack) {
  // The 64 threads above have exited: their Ms wait on the idle list.
  const int32_t ms = mcount();
  ASSERT_EQ(idle_m_count(), ms);
  M* reused = nullptr;
  std::thread([&] {
    M* m = getm();
    int local = 0;
    EXPECT_EQ(idle_m_count(), ms - 1);
    EXPECT_EQ(m->curg(), m->g0());
    EXPECT_TRUE(m->g0()->OnStack(&local)) << "g0 still on the old thread";
    EXPECT_EQ(m->g0()->m, m);
    EXPECT_EQ(internal::tls_stackcache, &m->mcache.stackcache);
    EXPECT_EQ(internal::tls_m, m);
    reused = m;
  }).join();
  EXPECT_EQ(mcount(), ms) << "a new M was created although one was idle";
  EXPECT_EQ(idle_m_count(), ms);
  std::vector<M*> listed = WalkAllm();
  EXPECT_NE(std::find(listed.begin(), listed.end(), reused), listed.end());
  EXPECT_EQ(listed.size(), static_cast<size_t>(ms));
}

TEST(MTest, DropmUnbindsAndTheNextGetmRebinds) {
  std::thread([] {
    M* m = getm();
    const int32_t idle = idle_m_count();
    dropm();
    EXPECT_EQ(internal::tls_m, internal::UnboundM());
    EXPECT_EQ(idle_m_count(), idle + 1);
    M* again = getm();  // LIFO idle list: the same M, warm.
    EXPECT_EQ(again, m);
    EXPECT_EQ(idle_m_count(), idle);
  }).join();
}

// Off g0, and on a thread with no M, the fast paths see only closed caches
// (limit 0, empty), whatever the size: no size reaches a cache that is not
// the running M's own on its g0.
void ExpectClosed(const StackCaches* cs) {
  EXPECT_EQ(cs, ClosedStackCaches());
  for (const StackCache& c : cs->c) {
    EXPECT_EQ(c.limit, 0);
    EXPECT_EQ(c.stats.cached.value(), 0);
  }
  for (const StackCache* c : cs->by_class) {
    EXPECT_EQ(c->limit, 0);
    EXPECT_TRUE(c >= cs->c && c < cs->c + kNumStackOrders + 1);
  }
}

// Every class leads to its order's cache, or to the closed one: the fast
// paths need no range check.
void ExpectClasses(const StackCaches& cs, bool orders_open) {
  for (int b = 0; b < kNumStackClasses; ++b) {
    const int order = b - kFirstStackClass;
    const bool served =
        order == 0 || (orders_open && order > 0 && order < kNumStackOrders);
    EXPECT_EQ(cs.by_class[b], served ? &cs.c[order] : &cs.c[kNumStackOrders])
        << "class " << b;
  }
}

TEST(MTest, SetCurgClosesTheCachesOffG0) {
  M* m = getm();
  G other;
  m->set_curg(&other);
  ExpectClosed(internal::tls_stackcache);
  m->set_curg(m->g0());
  EXPECT_EQ(internal::tls_stackcache, &m->mcache.stackcache);
  ExpectClasses(m->mcache.stackcache, /*orders_open=*/true);
  for (int k = 0; k < kNumStackOrders; ++k) {
    EXPECT_EQ(m->mcache.stackcache.c[k].limit, DefaultStackCacheLimit(k));
    EXPECT_EQ(m->mcache.stackcache.c[k].stack_size, OrderStackSize(k));
  }
  // Always closed.
  EXPECT_EQ(m->mcache.stackcache.c[kNumStackOrders].limit, 0);
}

// BypassCaches: the calling thread's fast paths see closed caches on g0 at
// once; another bound thread's at its next set_curg() (a G switch) or
// AdoptCacheBypass(); a thread that binds an M, idle or new, from then on
// at once. Stopping opens them all the same way.
TEST(MTest, BypassCachesClosesEveryMsCachesOnG0) {
  M* m = getm();
  std::atomic<int> step{0};
  std::thread other([&] {
    M* om = getm();
    EXPECT_EQ(internal::tls_stackcache, &om->mcache.stackcache);
    step = 1;
    while (step != 2) std::this_thread::yield();
    // Bypassed meanwhile: taken at the next switch back to g0.
    EXPECT_EQ(internal::tls_stackcache, &om->mcache.stackcache);
    G g;
    om->set_curg(&g);
    om->set_curg(om->g0());
    ExpectClosed(internal::tls_stackcache);
    step = 3;
    while (step != 4) std::this_thread::yield();
    om->AdoptCacheBypass();
    EXPECT_EQ(internal::tls_stackcache, &om->mcache.stackcache);
  });
  while (step != 1) std::this_thread::yield();
  BypassCaches(true);
  EXPECT_TRUE(CachesBypassed());
  ExpectClosed(internal::tls_stackcache);  // The caller's, at once.
  EXPECT_EQ(m->curg(), m->g0());
  step = 2;
  while (step != 3) std::this_thread::yield();
  // Threads that bind an M now, all at once: every idle M, and a new one.
  const int32_t ms = mcount();
  const int binders = idle_m_count() + 1;
  std::atomic<int> bound{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < binders; ++i) {
    threads.emplace_back([&] {
      getm();
      ExpectClosed(internal::tls_stackcache);
      bound.fetch_add(1);
      while (bound.load() != binders) std::this_thread::yield();
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_GT(mcount(), ms);
  BypassCaches(false);
  EXPECT_FALSE(CachesBypassed());
  EXPECT_EQ(internal::tls_stackcache, &m->mcache.stackcache);
  step = 4;
  other.join();
}

// Concurrent calls leave every M as the last call said.
TEST(MTest, ConcurrentBypassCallsEndAsTheLastSaid) {
  M* m = getm();
  for (int round = 0; round < 50; ++round) {
    std::thread a([] { BypassCaches(true); });
    std::thread b([] { BypassCaches(false); });
    std::thread c([] { getm(); });  // Registers or binds an M meanwhile.
    a.join();
    b.join();
    c.join();
    const bool last = CachesBypassed();
    m->AdoptCacheBypass();
    if (last) {
      ExpectClosed(internal::tls_stackcache);
    } else {
      EXPECT_EQ(internal::tls_stackcache, &m->mcache.stackcache);
    }
    // A thread binding now takes an idle M (c's, most likely, which
    // registered or bound during the calls): as the last call said.
    std::thread([last] {
      getm();
      if (last) {
        ExpectClosed(internal::tls_stackcache);
      } else {
        EXPECT_NE(internal::tls_stackcache, ClosedStackCaches());
      }
    }).join();
  }
  BypassCaches(false);
  m->AdoptCacheBypass();
}

TEST(MTest, MallocingClosesEveryOrderButTheFixedStackPath) {
  M* m = getm();
  m->set_mallocing(1);
  ExpectClasses(m->mcache.stackcache, /*orders_open=*/false);
  // Order 0 stays.
  EXPECT_EQ(internal::tls_stackcache, &m->mcache.stackcache);
  m->set_mallocing(0);
  m->set_gcing(1);
  ExpectClasses(m->mcache.stackcache, /*orders_open=*/false);
  m->set_gcing(0);
  ExpectClasses(m->mcache.stackcache, /*orders_open=*/true);
}

TEST(MTest, UnboundThreadsSeeClosedCaches) {
  std::thread([] {
    EXPECT_EQ(internal::tls_m, internal::UnboundM());
    ExpectClosed(internal::tls_stackcache);
  }).join();
}

// A thread that has no alternate signal stack gets its M's; one that has
// one (the sanitizers give every thread theirs) keeps it.
TEST(MTest, BoundThreadsGetAnAlternateSignalStack) {
  std::thread([] {
    stack_t st0;
    ASSERT_EQ(sigaltstack(nullptr, &st0), 0);
    const bool had_one = (st0.ss_flags & SS_DISABLE) == 0;
    M* m = getm();
    // Ours is made when the thread needs it (a thread that had one does not).
    if (!had_one) {
      ASSERT_NE(m->sigaltstack.load(), nullptr);
    }
    stack_t st;
    ASSERT_EQ(sigaltstack(nullptr, &st), 0);
    EXPECT_NE(st.ss_flags & SS_DISABLE, SS_DISABLE);
    EXPECT_EQ(st.ss_sp, had_one ? st0.ss_sp : m->sigaltstack.load());
    EXPECT_EQ(m->sigaltstack_installed, !had_one);
    dropm();  // Ours is taken back: the next thread to get this M gets it.
    ASSERT_EQ(sigaltstack(nullptr, &st), 0);
    EXPECT_EQ((st.ss_flags & SS_DISABLE) == 0, had_one);
  }).join();
}

TEST(MTest, AThreadsOwnSignalStackIsKept) {
  std::thread([] {
    static char mine[64 << 10];
    stack_t st{};
    st.ss_sp = mine;
    st.ss_size = sizeof mine;
    ASSERT_EQ(sigaltstack(&st, nullptr), 0);
    M* m = getm();
    EXPECT_FALSE(m->sigaltstack_installed);
    ASSERT_EQ(sigaltstack(nullptr, &st), 0);
    EXPECT_EQ(st.ss_sp, mine);
    dropm();
    ASSERT_EQ(sigaltstack(nullptr, &st), 0);
    EXPECT_EQ(st.ss_sp, mine);  // Still the thread's own.
    st.ss_flags = SS_DISABLE;
    sigaltstack(&st, nullptr);
  }).join();
}

// A thread entering the runtime never waits for a scavenger that borrowed
// the idle Ms: here the borrower, holding an idle M, starts a thread and
// waits for it to bind; had binding waited for borrowers, it would time out.
struct BorrowState {
  std::atomic<int> calls{0};
  std::atomic<bool> bound{false};
  bool waited_in_vain = false;
  std::thread entering;
};

TEST(MTest, BindingNeverWaitsForABorrower) {
  std::thread([] { getm(); }).join();  // At least one idle M.
  ASSERT_GT(idle_m_count(), 0);
  static BorrowState state;
  ForEachIdleM(
      [](M* m, void* arg) {
        auto* st = static_cast<BorrowState*>(arg);
        EXPECT_EQ(m->owner.load(), kMBorrowed);
        if (st->calls.fetch_add(1) != 0) return;
        st->entering = std::thread([st] {
          getm();
          st->bound = true;
        });
        int ms = 0;
        while (!st->bound.load() && ms++ < 10000) {
          std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        st->waited_in_vain = !st->bound.load();
      },
      &state);
  state.entering.join();
  EXPECT_GT(state.calls.load(), 0);
  EXPECT_FALSE(state.waited_in_vain) << "binding waited for the borrower";
  for (M* m = allm(); m != nullptr; m = m->alllink()) {
    EXPECT_NE(m->owner.load(), kMBorrowed) << "an M was not given back";
  }
}

// A thread that ends while its M still says it runs a G (a runtime that
// let a fiber's thread exit, or forgot set_curg(g0)) gives its M back, on
// g0, idle. The automatic dropm() at thread exit once died "dropm not on
// scheduler stack": a fatal error at thread exit that nothing announced.
TEST(MTest, AThreadThatExitsOffG0GivesItsMBack) {
  static G g;
  M* m = nullptr;
  std::thread([&m] {
    m = getm();
    m->set_curg(&g);
  }).join();
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->curg(), m->g0());
  EXPECT_EQ(m->owner.load(), kMIdle);
  std::vector<M*> listed = WalkAllm();
  EXPECT_NE(std::find(listed.begin(), listed.end(), m), listed.end());
}

// README "Limits": allm holds about as many Ms as the most threads that
// were in the runtime at once; a thread that enters while a scavenger holds
// an idle M takes another, or a new one rather than wait, so a few more may
// appear, but the count does not grow with thread churn. (It did: TakeIdleM
// made a new M whenever the top of the idle list was borrowed, and 3,000
// rounds of churn left 89 Ms.)
// In a process of its own (the tests above leave 64 Ms), as a program's
// first threads would be.
TEST(MDeathTest, ChurnWithAScavengerStaysWithinThePeakPlusOne) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        getm();  // This thread: 1 M.
        std::atomic<bool> stop{false};
        std::thread scavenger([&] {
          while (!stop.load()) ScavengeStacks();
        });
        // Some idle Ms with full caches (long to empty).
        constexpr int kConcurrent = 2;
        for (int round = 0; round < 1000; ++round) {
          RunThreads(kConcurrent, [](int) { AllocAndFreeEveryOrder(40); });
        }
        stop.store(true);
        scavenger.join();
        // At most this thread + the scavenger + kConcurrent threads at
        // once, + 1 for the scavenger's borrow, + 1 for a binder racing
        // another past it.
        const int bound = 1 + 1 + kConcurrent + 2;
        fprintf(stderr, "mcount %d, bound %d\n", mcount(), bound);
        exit(mcount() <= bound ? 0 : 1);
      },
      testing::ExitedWithCode(0), "mcount [0-9]+, bound 6");
}

// A signal handler that calls in while its thread binds its first M dies
// with the re-entry message, and never waits.
// Regression: a signal arriving inside pthread_getattr_np() while the thread
// bound its first M, whose handler called stackalloc, deadlocked on glibc's
// locks instead of dying.
void AllocatingHandler(int) { stackalloc(kFixedStack); }
void RaiseInTheMiddle() { raise(SIGUSR1); }

TEST(MDeathTest, ASignalThatCallsInWhileTheThreadBindsDies) {
  std::string err;
  const int status = testing_util::RunInChild(
      [] {
        struct sigaction sa {};
        sa.sa_handler = &AllocatingHandler;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGUSR1, &sa, nullptr);
        internal::SetBindHook(&RaiseInTheMiddle);
        dropm();  // So that the next call binds.
        stackalloc(kFixedStack);
        return 1;  // The handler's call went through.
      },
      &err, /*timeout_ms=*/20000);
  EXPECT_EQ(testing_util::DescribeWaitStatus(status), "signal 6 (Aborted)");
  EXPECT_NE(err.find("fatal error: stackalloc: re-entered from a signal "
                     "handler"),
            std::string::npos)
      << err;
}

}  // namespace
}  // namespace stackalloc
