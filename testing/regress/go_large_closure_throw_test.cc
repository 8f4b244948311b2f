// proc.h, Go(): "If copying f throws, the exception reaches the caller and
// no G is spawned", for closures stored inline and for those too large to
// be, which are copied on g0 (Closure::Emplace): that throw once called
// std::terminate in Systemstack's noexcept trampoline. And Systemstack's
// own function must not throw: if it does, a clear fatal error.

#include <atomic>
#include <cstddef>

#include "gtest/gtest.h"
#include "proc/proc.h"

namespace stackalloc {
namespace proc {
namespace {

struct BigThrowingCopy {
  char pad[2 * internal::Closure::kInlineSize] = {};
  BigThrowingCopy() = default;
  BigThrowingCopy(const BigThrowingCopy&) { throw 7; }
  void operator()() const {}
};
static_assert(sizeof(BigThrowingCopy) > internal::Closure::kInlineSize);

TEST(GoLargeClosureTest, ACopyThatThrowsReachesTheSpawner) {
  Options o;
  o.gomaxprocs = 1;
  Start(o);
  BigThrowingCopy big;
  EXPECT_THROW(Go(big), int);  // From an ordinary thread,
  std::atomic<int> caught{0};
  Go([&caught] {  // and from a G, whose large closures are copied on g0.
    WithStack(kUnwindStack, [&caught] {
      try {
        Go(BigThrowingCopy{});
      } catch (int e) {
        caught = e;
      }
    });
  });
  Wait();
  const ProcStats st = ReadProcStats();
  Stop();
  EXPECT_EQ(caught.load(), 7);
  EXPECT_EQ(st.gs_started, 1u);  // No G was spawned by either failed Go.
  EXPECT_EQ(st.gs_finished, 1u);
}

TEST(GoLargeClosureDeathTest, AnExceptionOutOfSystemstackDiesClearly) {
  EXPECT_DEATH(
      {
        Options o;
        o.gomaxprocs = 1;
        Start(o);
        Go([] { Systemstack([] { throw 7; }); });
        Wait();
      },
      "fatal error: systemstack: an exception escaped its function");
}

}  // namespace
}  // namespace proc
}  // namespace stackalloc
