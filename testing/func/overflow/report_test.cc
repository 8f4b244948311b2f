// The overflow report names the code that overflowed: a recursion runs off
// the end of a G's stack and of a Boost fiber's stack from
// BoostStackAllocator, and the report gives, after its first line, the
// faulting instruction's address, inside the recursing function and named
// after it, and the functions on the stack that called it, the recursion's
// frames on one line. In every compilation mode (-c opt keeps the function
// out of line and its symbol in the binary) and under the sanitizers. Where
// the signal stack the handler runs on is too small for the symbolizer, the
// report still gives the addresses, and says why the names are missing.

#include <signal.h>
#include <sys/mman.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ostream>
#include <string>
#include <thread>
#include <utility>

#include "base/sanitizers.h"
#include "base/traceback.h"
#include "boost/context/fiber.hpp"
#include "boost_stack_allocator.h"
#include "gtest/gtest.h"
#include "proc/proc.h"
#include "sched/m.h"
#include "stackalloc.h"
#include "testing/test_helpers.h"

// The function the report must name: out of line and never cloned (GCC's
// clones carry suffixes), in every compilation mode.
#if defined(__clang__)
#define STACKALLOC_OUT_OF_LINE __attribute__((noinline))
#else
#define STACKALLOC_OUT_OF_LINE __attribute__((noinline, noclone))
#endif

namespace stackalloc {
namespace {

volatile bool forever = true;  // The compiler cannot tell it is.

STACKALLOC_OUT_OF_LINE int OverflowingRecursion(int depth) {
  volatile char frame[256];
  frame[0] = static_cast<char>(depth);
  if (!forever) return frame[0];
  return OverflowingRecursion(depth + 1) + frame[0];  // Not a tail call.
}

constexpr char kName[] =
    "stackalloc::(anonymous namespace)::OverflowingRecursion()";

// The report's lines, checked in the parent of the death test: a fork of
// it, so OverflowingRecursion's address is the same in both.
class NamesTheRecursion : public testing::MatcherInterface<const std::string&> {
 public:
  // `first_line`: a regex for the report's first line; `names`: whether the
  // functions are named.
  NamesTheRecursion(std::string first_line, bool names)
      : first_line_(std::move(first_line)), names_(names) {}

  bool MatchAndExplain(const std::string& err,
                       testing::MatchResultListener* why) const override {
    const size_t header = err.find("fatal error: ");
    const testing::Matcher<const std::string&> first_line =
        testing::ContainsRegex(first_line_);
    if (!first_line.Matches(err) || header == std::string::npos) {
      *why << "no first line like " << first_line_;
      return false;
    }
    const std::string report = err.substr(header);
    const size_t pc_at = report.find("\n  pc 0x");
    if (pc_at == std::string::npos) {
      *why << "no pc line";
      return false;
    }
    const auto pc = static_cast<uintptr_t>(
        strtoull(report.c_str() + pc_at + 8, nullptr, 16));
    const size_t pc_end = report.find('\n', pc_at + 1);
    const std::string pc_line = report.substr(pc_at + 1, pc_end - pc_at - 1);
    const size_t caller_end = report.find('\n', pc_end + 1);
    const std::string caller =
        report.substr(pc_end + 1, caller_end - pc_end - 1);
    const std::string in = std::string(" in ") + kName;
    // The faulting instruction lies in OverflowingRecursion's code (a few
    // hundred bytes at most, sanitizers' instrumentation included), or,
    // under a sanitizer, in its runtime's check of a frame's first write
    // (__tsan_read1), which the recursion called.
    const auto fn = reinterpret_cast<uintptr_t>(&OverflowingRecursion);
    const bool in_fn = pc >= fn && pc - fn < 1024;
    if (!in_fn && !(sanitizer::kAsan || sanitizer::kTsan)) {
      *why << "pc " << std::hex << pc << " is not in OverflowingRecursion at "
           << fn;
      return false;
    }
    if (!names_) {
      if (pc_line.find(" in ") != std::string::npos ||
          caller.rfind("  called from 0x", 0) != 0 ||
          report.find("\n  (functions not named: ") == std::string::npos) {
        *why << "names where the stack had no room for them, or no frames";
        return false;
      }
      return true;
    }
    // "  pc 0x... in <kName>", then "  called from 0x... in <kName> (<n>
    // frames)": the recursion's callers, on one line.
    const bool pc_named = in_fn
                              ? pc_line.size() > in.size() &&
                                    pc_line.compare(pc_line.size() - in.size(),
                                                    in.size(), in) == 0
                              : pc_line.find(" in ") != std::string::npos &&
                                    pc_line.find(" in ?") == std::string::npos;
    if (!pc_named) {
      *why << "the pc line does not name the function: " << pc_line;
      return false;
    }
    if (caller.rfind("  called from 0x", 0) != 0 ||
        caller.find(in + " (") == std::string::npos ||
        caller.find(" frames)") == std::string::npos) {
      *why << "the next line is not the recursion's: " << caller;
      return false;
    }
    return true;
  }

  void DescribeTo(std::ostream* os) const override {
    *os << "an overflow report naming OverflowingRecursion";
  }

 private:
  const std::string first_line_;
  const bool names_;
};

testing::Matcher<const std::string&> ReportOf(size_t size, bool on_a_g,
                                              bool names = true) {
  return testing::Matcher<const std::string&>(new NamesTheRecursion(
      testing_util::OverflowReportPattern(size, on_a_g) + "\n", names));
}

TEST(OverflowReportDeathTest, NamesTheFunctionThatOverflowedAG) {
  EXPECT_DEATH(
      {
        proc::Options o;
        proc::Start(o);
        proc::Go([] { OverflowingRecursion(0); });
        proc::Wait();
      },
      ReportOf(kFixedStack, /*on_a_g=*/true));
}

void OverflowABoostFiber(size_t size) {
  boost::context::fiber f(std::allocator_arg, BoostStackAllocator(size),
                          [](boost::context::fiber&& caller) {
                            OverflowingRecursion(0);
                            return std::move(caller);
                          });
  f = std::move(f).resume();
}

TEST(OverflowReportDeathTest, NamesTheFunctionThatOverflowedABoostFiber) {
  for (size_t size : {size_t{16} << 10, size_t{256} << 10}) {
    EXPECT_DEATH(OverflowABoostFiber(size), ReportOf(size, /*on_a_g=*/false))
        << size;
  }
  // On a thread that only runs the fiber: PrepareThread gives it the M's
  // signal stack.
  EXPECT_DEATH(std::thread([] {
                 BoostStackAllocator::PrepareThread();
                 OverflowABoostFiber(size_t{64} << 10);
               }).join(),
               ReportOf(size_t{64} << 10, /*on_a_g=*/false));
}

// A thread with an alternate signal stack of its own, too small for the
// symbolizer (the M keeps it): the pc and frames, unnamed, and why.
TEST(OverflowReportDeathTest, WithoutRoomForNamesTheAddressesRemain) {
  EXPECT_DEATH(std::thread([] {
                 // The room left below the handler's frame is less than
                 // the whole stack: never the budget. A guard page below.
                 const size_t small = kTracebackStack;
                 auto* mem = static_cast<char*>(
                     mmap(nullptr, small + 4096, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
                 if (mem == MAP_FAILED || mprotect(mem, 4096, PROT_NONE) != 0) {
                   abort();
                 }
                 stack_t ss{};
                 ss.ss_sp = mem + 4096;
                 ss.ss_size = small;
                 if (sigaltstack(&ss, nullptr) != 0) abort();
                 BoostStackAllocator::PrepareThread();
                 OverflowABoostFiber(size_t{16} << 10);
               }).join(),
               ReportOf(size_t{16} << 10, /*on_a_g=*/false, /*names=*/false));
}

// A thread's own signal stack of 2 (6 under the sanitizers) to 12 KiB
// beyond the kernel's signal frame, a guard page below it: the report's first
// line comes in every case, then the walk if the stack has room for it, else
// why not; never a write below the stack (which would fault on the guard, and
// the process die of SIGSEGV without a report). Regression: the walk ran on a
// few KiB and wrote up to 1.7 KiB below a thread's own signal stack.
TEST(OverflowReportTest, OnAThreadsSmallSignalStackNothingIsWrittenBelowIt) {
  // The first line's frames fit in 2 KiB (1.25 KiB measured, GCC and clang),
  // in 6 KiB under the sanitizers.
  const size_t first_line =
      sanitizer::kAsan || sanitizer::kTsan ? 6 << 10 : 2 << 10;
  for (size_t extra = first_line; extra <= 12 << 10; extra += 256) {
    const size_t size = (SignalFrameBytes() + extra + 15) & ~size_t{15};
    std::string err;
    const int status = testing_util::RunInChild(
        [size] {
          std::thread([size] {
            auto* mem = static_cast<char*>(
                mmap(nullptr, size + 4096, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
            if (mem == MAP_FAILED || mprotect(mem, 4096, PROT_NONE) != 0) {
              _exit(90);
            }
            stack_t ss{};
            ss.ss_sp = mem + 4096;
            ss.ss_size = size;
            if (sigaltstack(&ss, nullptr) != 0) _exit(91);
            BoostStackAllocator::PrepareThread();
            OverflowABoostFiber(size_t{16} << 10);
          }).join();
          return 92;
        },
        &err);
    EXPECT_EQ(testing_util::DescribeWaitStatus(status), "signal 6 (Aborted)")
        << "signal stack of " << size << " bytes: " << err;
    EXPECT_NE(err.find("fatal error: stack overflow: 16384-byte stack"),
              std::string::npos)
        << size << ": " << err;
    const bool walked = err.find("\n  pc 0x") != std::string::npos;
    const bool why = err.find("\n  (no traceback: ") != std::string::npos;
    EXPECT_TRUE(walked != why) << size << ": " << err;
    printf("signal stack of %zu bytes: %s\n", size,
           walked ? "traceback" : "no traceback, and why");
    fflush(stdout);  // Not again in the next child.
  }
}

}  // namespace
}  // namespace stackalloc
