// proc.h: WithStack may be called from anywhere; off a G it calls its
// function if the stack it runs on has the room, and otherwise dies (on a
// thread's own stack: proc_death_test.cc). On a boost::context::fiber on one
// of our stacks (BoostStackAllocator), the room is that stack's, found with
// FindStack: it once measured the fiber's stack pointer against the
// thread's own stack bounds, which reported 0 (or, for a fiber stack above
// the thread's stack, overstated the room). On a stack of unknown bounds
// (Boost's fixedsize_stack) the room counts as none, and WithStack dies.
// Near the bottom of a stack, the message still gets out.

#include <pthread.h>

#include <cstddef>
#include <cstdint>
#include <utility>

#include "absl/base/attributes.h"
#include "base/sanitizers.h"
#include "boost/context/fiber.hpp"
#include "boost/context/fixedsize_stack.hpp"
#include "boost_stack_allocator.h"
#include "gtest/gtest.h"
#include "proc/proc.h"
#include "stackalloc.h"

namespace stackalloc {
namespace proc {
namespace {

using boost::context::fiber;

TEST(WithStackTest, TheRoomIsTheFibersStack) {
  for (size_t kib : {size_t{16}, size_t{64}, size_t{2048}}) {
    const size_t bytes = kib << 10;
    size_t room = 0;
    int r = 0;
    void* lo = nullptr;
    size_t size = 0;
    bool found = false;
    fiber f(std::allocator_arg, BoostStackAllocator(bytes),
            [&](fiber&& caller) {
              int local = 0;
              found = FindStack(&local, &lo, &size);
              room = internal::StackRoom();
              r = WithStack(bytes / 2, [] { return 1; });
              return std::move(caller);
            });
    f = std::move(f).resume();
    EXPECT_EQ(r, 1) << kib;
    ASSERT_TRUE(found) << kib;
    EXPECT_EQ(size, bytes) << kib;
    // Boost keeps its fiber record at the top: most of the stack is left,
    // and never more than the stack.
    EXPECT_GT(room, bytes / 2) << kib;
    EXPECT_LT(room, bytes) << kib;
  }
}

TEST(WithStackDeathTest, AStackOfUnknownBoundsHasNoRoom) {
  EXPECT_DEATH(
      {
        fiber f(std::allocator_arg, boost::context::fixedsize_stack(65536),
                [](fiber&& caller) {
                  WithStack(1, [] {});
                  return std::move(caller);
                });
        f = std::move(f).resume();
      },
      "fatal error: withstack: 1 bytes do not fit on this stack, which is "
      "not a G's");
}

// Near the bottom of a stack, a WithStack that cannot be served still says
// why: its message is built in FatalBuffer, not on the stack that has only
// kStackGuard bytes left (256 in an optimised build). It was built in two
// 320-byte buffers there, and ran into the guard page, reported as an
// overflow; under ASan even at the top of a 4 KiB fiber.
ABSL_ATTRIBUTE_NOINLINE void UseStackThenWithStack(size_t left, size_t n) {
  volatile char pad[64];
  pad[0] = 0;
  if (internal::StackRoom() > left) {
    UseStackThenWithStack(left, n);
  } else {
    WithStack(n, [] {});
  }
  static_cast<void>(pad[0]);
}

TEST(WithStackDeathTest, NoRoomNearTheBottomSaysSo) {
  if (sanitizer::kAsan) {
    // Boost 1.74 does not tell ASan of its switches, and before a noreturn
    // call on a stack it was not told of, ASan prints "False positive error
    // reports may follow" with a formatter that needs more than these small
    // stacks have (docs/boost.md). Our Gs' switches are annotated: the G
    // case below runs under ASan too.
    GTEST_SKIP() << "ASan's own warning overflows an unannotated fiber stack";
  }
  EXPECT_DEATH(
      {
        fiber f(std::allocator_arg, BoostStackAllocator(16384),
                [](fiber&& caller) {
                  UseStackThenWithStack(64, 65536);
                  return std::move(caller);
                });
        f = std::move(f).resume();
      },
      "fatal error: withstack: 65536 bytes do not fit on this stack");
  EXPECT_DEATH(
      {
        fiber f(std::allocator_arg, BoostStackAllocator(4096),
                [](fiber&& caller) {
                  WithStack(8192, [] {});
                  return std::move(caller);
                });
        f = std::move(f).resume();
      },
      "fatal error: withstack: 8192 bytes do not fit on this stack");
}

TEST(WithStackDeathTest, FrameTooLargeNearTheBottomOfAGSaysSo) {
  EXPECT_DEATH(
      {
        Options o;
        Start(o);
        Go([] { UseStackThenWithStack(64, kMaxStackFrame + 1); });
        Wait();
      },
      "fatal error: withstack: a frame of 1073741825 bytes is larger");
}

// pthread_exit inside a WithStack function on a plain thread ends the
// thread, as it would without WithStack: glibc's forced unwinding is not an
// exception that escaped.
TEST(WithStackTest, PthreadExitInsideEndsTheThread) {
  static bool after = false;
  pthread_t t;
  ASSERT_EQ(pthread_create(
                &t, nullptr,
                [](void*) -> void* {
                  WithStack(64, [] { pthread_exit(nullptr); });
                  after = true;
                  return nullptr;
                },
                nullptr),
            0);
  ASSERT_EQ(pthread_join(t, nullptr), 0);
  EXPECT_FALSE(after);
}

}  // namespace
}  // namespace proc
}  // namespace stackalloc
