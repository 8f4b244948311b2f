// Every G has its own C++ exception state: what it is catching
// (std::current_exception(), a rethrow) and how many of its exceptions are
// in flight (std::uncaught_exceptions()) travel with it across switches and
// Ms, and every exception object is destroyed once.
//
// Regression: the switch did not carry the thread's state (libsupc++'s
// __cxa_eh_globals). Two Gs on one M that caught and yielded inside the
// catch block saw each other's exceptions (399 of 400 blocks), a G that
// resumed on another M found its own gone, and ASan's leak checker reported
// the exception objects.

#include <atomic>
#include <chrono>
#include <exception>
#include <stdexcept>
#include <vector>

#include "absl/base/attributes.h"
#include "gtest/gtest.h"
#include "proc/proc.h"
#include "sched/m.h"

namespace stackalloc {
namespace proc {
namespace {

// The calling thread's M, read anew (a G may resume on another thread).
ABSL_ATTRIBUTE_NOINLINE int64_t CurrentMId() {
  M* m = getm();
  asm volatile("" : "+r"(m));
  return m->id();
}

// An exception that knows whose it is, and counts the live ones.
struct Tagged {
  static std::atomic<int> live;
  explicit Tagged(int o) : owner(o) { live.fetch_add(1); }
  Tagged(const Tagged& t) : owner(t.owner) { live.fetch_add(1); }
  ~Tagged() { live.fetch_sub(1); }
  int owner;
};
std::atomic<int> Tagged::live{0};

// The owner of the exception this G is catching, or -1.
int CaughtOwner() {
  std::exception_ptr e = std::current_exception();
  if (!e) return -1;
  try {
    std::rethrow_exception(e);
  } catch (const Tagged& t) {
    return t.owner;
  } catch (...) {
    return -2;
  }
}

struct Tally {
  std::atomic<int> blocks{0};     // Catch blocks entered.
  std::atomic<int> checks{0};     // Checks made after a switch.
  std::atomic<int> own{0};        // Checks that saw the G's own exception.
  std::atomic<int> foreign{0};    // Checks that saw another's, or none.
  std::atomic<int> nested_ok{0};  // Rethrows caught as the G's own.
  std::atomic<int> moved{0};      // Checks made after a change of M.
};

// Throws, catches, and yields inside the catch block `yields` times,
// checking after each switch that the exception caught is its own; then
// rethrows it and catches it again. With `until_moved`, it goes on yielding
// until some G has resumed on another M (or a minute has passed): how soon
// idle Ms wake and take Gs depends on the OS, and a fast build may run every
// G's yields before a second M is scheduled at all.
void CatchAndYield(int id, int yields, bool until_moved, Tally* t) {
  WithStack(kUnwindStack, [&] {
    try {
      throw Tagged(id);
    } catch (const Tagged& caught) {
      t->blocks.fetch_add(1);
      const auto deadline =
          std::chrono::steady_clock::now() + std::chrono::minutes(1);
      for (int i = 0;
           i < yields || (until_moved && t->moved.load() == 0 &&
                          std::chrono::steady_clock::now() < deadline);
           ++i) {
        const void* m0 = &caught;  // The object lives with the G.
        const int64_t before = CurrentMId();
        Gosched();
        if (CurrentMId() != before) t->moved.fetch_add(1);
        const bool mine = CaughtOwner() == id && &caught == m0 &&
                          caught.owner == id && std::uncaught_exceptions() == 0;
        t->checks.fetch_add(1);
        (mine ? t->own : t->foreign).fetch_add(1);
      }
      try {
        throw;
      } catch (const Tagged& again) {
        if (again.owner == id) t->nested_ok.fetch_add(1);
      }
    }
    // After the block the G catches nothing.
    if (CaughtOwner() != -1) t->foreign.fetch_add(1);
  });
}

void RunCatchers(int procs, int gs, int yields, bool until_moved, Tally* t) {
  Start(Options{procs});
  for (int id = 0; id < gs; ++id) {
    Go([id, yields, until_moved, t] {
      CatchAndYield(id, yields, until_moved, t);
    });
  }
  Stop();
}

TEST(ExceptionTest, TwoGsOnOneMKeepTheirOwnCaughtExceptions) {
  Tally t;
  RunCatchers(/*procs=*/1, /*gs=*/2, /*yields=*/200, /*until_moved=*/false, &t);
  EXPECT_EQ(t.blocks.load(), 2);
  EXPECT_EQ(t.checks.load(), 400);
  EXPECT_EQ(t.own.load(), 400);
  EXPECT_EQ(t.foreign.load(), 0);
  EXPECT_EQ(t.nested_ok.load(), 2);
  EXPECT_EQ(Tagged::live.load(), 0);  // Every exception object destroyed.
}

TEST(ExceptionTest, GsKeepTheirExceptionsAcrossMs) {
  Tally t;
  RunCatchers(/*procs=*/4, /*gs=*/64, /*yields=*/50, /*until_moved=*/true, &t);
  // Some G resumed on another M: the test did look across Ms.
  EXPECT_GT(t.moved.load(), 0);
  EXPECT_EQ(t.blocks.load(), 64);
  EXPECT_GE(t.checks.load(), 64 * 50);
  EXPECT_EQ(t.own.load(), t.checks.load());
  EXPECT_EQ(t.foreign.load(), 0);
  EXPECT_EQ(t.nested_ok.load(), 64);
  EXPECT_EQ(Tagged::live.load(), 0);
}

// A destructor that runs during unwinding sees its own G's exception in
// flight, and yields meanwhile; a G that is not unwinding sees none.
struct YieldsWhileUnwinding {
  std::atomic<int>* seen_in_flight;
  ~YieldsWhileUnwinding() {
    for (int i = 0; i < 20; ++i) {
      Gosched();
      if (std::uncaught_exceptions() == 1) seen_in_flight->fetch_add(1);
    }
  }
};

TEST(ExceptionTest, UncaughtCountsBelongToTheirG) {
  std::atomic<int> in_flight{0};
  std::atomic<int> calm_zero{0};
  std::atomic<int> caught{0};
  Start(Options{2});
  for (int i = 0; i < 8; ++i) {
    Go([&] {
      WithStack(kUnwindStack, [&] {
        try {
          YieldsWhileUnwinding y{&in_flight};
          throw std::runtime_error("unwinding");
        } catch (const std::runtime_error&) {
          caught.fetch_add(1);
        }
      });
    });
    Go([&] {
      for (int k = 0; k < 20; ++k) {
        Gosched();
        if (std::uncaught_exceptions() == 0) calm_zero.fetch_add(1);
      }
    });
  }
  Stop();
  EXPECT_EQ(caught.load(), 8);
  EXPECT_EQ(in_flight.load(), 8 * 20);
  EXPECT_EQ(calm_zero.load(), 8 * 20);
}

}  // namespace
}  // namespace proc
}  // namespace stackalloc
