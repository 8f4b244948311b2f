// One process of the fiber benchmark (//testing/perf:fiber_benchmark runs
// several and prints one table). An op is one fiber, from its stack's
// allocation to its stack's deallocation:
//
//   --fiber_mode=context (default)
//       create a boost::context::fiber, resume it to its end (it returns at
//       once), destroy it; stacks of 4, 16, 64, 128 and 1024 KiB, from
//         ours           stackalloc::BoostStackAllocator (a guard page below
//                        every stack)
//         fixedsize      boost::context::fixedsize_stack (malloc)
//         pooled         boost::context::pooled_fixedsize_stack (a
//                        boost::pool per allocator object; unguarded)
//         protected      boost::context::protected_fixedsize_stack (mmap,
//                        mprotect and munmap per stack)
//   --fiber_mode=context --stack_guards=off
//         ours_noguards  stackalloc with SetStackGuards(false), set before
//                        the process's first stack (it applies to the chunks
//                        made from then on), and nothing else
//   --fiber_mode=work_stealing --fiber_threads=T
//       Boost.Fiber on a work_stealing scheduler of T threads (this one and
//       T - 1 more): spawn kBatch fibers from this thread, join them all;
//       ours, fixedsize and protected, at Boost's default stack size
//       (128 KiB). Idle threads steal, so fibers end on every thread. Not
//       pooled: it is not thread-safe. work_stealing can be set up once per
//       process, hence one process per T.
//
//   bazel run -c opt //testing/perf:fiber_process -- --fiber_mode=context
//
// The allocator object lives across iterations and Boost copies it into
// every fiber, as a program that keeps one would.

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "benchmark/benchmark.h"
#include "boost/context/fiber.hpp"
#include "boost/context/fixedsize_stack.hpp"
#include "boost/context/pooled_fixedsize_stack.hpp"
#include "boost/context/protected_fixedsize_stack.hpp"
#include "boost/fiber/all.hpp"
#include "boost_stack_allocator.h"
#include "stackalloc.h"
#include "testing/perf/comparison_reporter.h"

namespace stackalloc {
namespace baseline {
namespace {

namespace ctx = boost::context;

constexpr int kStackKiB[] = {4, 16, 64, 128, 1024};
// Fibers spawned, then joined, per iteration of the work_stealing group.
constexpr int kBatch = 100;

template <typename Salloc>
void ContextFiber(benchmark::State& state) {
  Salloc salloc(static_cast<size_t>(state.range(0)) << 10);
  bool ran = false;
  for (auto _ : state) {
    ctx::fiber f(std::allocator_arg, salloc, [&ran](ctx::fiber&& caller) {
      ran = true;
      return std::move(caller);
    });
    f = std::move(f).resume();  // To its end: its stack is freed here.
    benchmark::DoNotOptimize(f);
  }
  if (!ran) state.SkipWithError("the fiber never ran");
}

template <typename Salloc>
void RegisterContext(const std::string& name) {
  auto* b = benchmark::RegisterBenchmark(("context/" + name).c_str(),
                                         &ContextFiber<Salloc>);
  b->ArgName("kib")->UseRealTime()->Unit(benchmark::kNanosecond);
  for (int kib : kStackKiB) b->Arg(kib);
}

// The threads of a work_stealing scheduler besides this one: they join the
// scheduler (whose constructor waits for all of them) and steal until the
// process is done.
class WorkStealingThreads {
 public:
  explicit WorkStealingThreads(int threads) {
    for (int i = 1; i < threads; ++i) {
      helpers_.emplace_back([this, threads] {
        BoostStackAllocator::PrepareThread();
        boost::fibers::use_scheduling_algorithm<
            boost::fibers::algo::work_stealing>(threads);
        while (!done_.load()) {
          boost::this_fiber::sleep_for(std::chrono::microseconds(100));
        }
      });
    }
    BoostStackAllocator::PrepareThread();
    boost::fibers::use_scheduling_algorithm<boost::fibers::algo::work_stealing>(
        threads);
    owner_ = std::this_thread::get_id();
  }
  ~WorkStealingThreads() {
    done_.store(true);
    for (std::thread& t : helpers_) t.join();
  }
  bool OnOwner() const { return std::this_thread::get_id() == owner_; }

 private:
  std::atomic<bool> done_{false};
  std::vector<std::thread> helpers_;
  std::thread::id owner_;
};

WorkStealingThreads* work_stealing = nullptr;

template <typename Salloc>
void SpawnJoin(benchmark::State& state) {
  if (work_stealing == nullptr || !work_stealing->OnOwner()) {
    state.SkipWithError(
        "not on the thread that joined the work_stealing "
        "scheduler");
    return;
  }
  Salloc salloc(ctx::stack_traits::default_size());
  std::vector<boost::fibers::fiber> fibers(kBatch);
  std::vector<char> ran(kBatch);
  bool all_ran = true;
  for (auto _ : state) {
    for (int i = 0; i < kBatch; ++i) {
      ran[i] = 0;
      fibers[i] = boost::fibers::fiber(std::allocator_arg, salloc,
                                       [&ran, i] { ran[i] = 1; });
    }
    for (boost::fibers::fiber& f : fibers) f.join();
    for (char r : ran) all_ran = all_ran && r != 0;
  }
  if (!all_ran) state.SkipWithError("a fiber never ran");
  state.counters[kOpsPerIteration] = kBatch;
}

template <typename Salloc>
void RegisterWorkStealing(const std::string& name, int threads) {
  benchmark::RegisterBenchmark(("work_stealing/" + name).c_str(),
                               &SpawnJoin<Salloc>)
      ->ArgName("threads")
      ->Arg(threads)
      ->UseRealTime()
      ->Unit(benchmark::kNanosecond);
}

int Main(int argc, char** argv) {
  const std::string mode = TakeFlag(argc, argv, "--fiber_mode=");
  const std::string guards = TakeFlag(argc, argv, "--stack_guards=");
  const std::string threads_flag = TakeFlag(argc, argv, "--fiber_threads=");
  const bool guards_off = guards == "off";
  if (guards_off) SetStackGuards(false);  // Before this process's first stack.

  ComparisonReporter reporter("ours");
  reporter.set_row_per_contender(true);
  reporter.SetColumns("context", "kib", "stack KiB");
  reporter.SetColumns("work_stealing", "threads", "");
  reporter.SetCaption("context",
                      "op = create a boost::context::fiber, resume it to its "
                      "end, destroy it: ns per fiber");
  reporter.SetCaption("work_stealing",
                      "op = one Boost.Fiber fiber spawned and joined, " +
                          std::to_string(kBatch) +
                          " at a time, on work_stealing threads; 128 KiB "
                          "stacks: ns per fiber");
  reporter.AddNote(
      "ours: guard page below every stack; ours_noguards: "
      "SetStackGuards(false), in a process of its own; pooled: "
      "unguarded, one pool per allocator object, not thread-safe (not in "
      "work_stealing)");

  if (mode.empty() || mode == "context") {
    if (guards_off) {
      RegisterContext<BoostStackAllocator>("ours_noguards");
    } else {
      RegisterContext<BoostStackAllocator>("ours");
      RegisterContext<ctx::fixedsize_stack>("fixedsize");
      RegisterContext<ctx::pooled_fixedsize_stack>("pooled");
      RegisterContext<ctx::protected_fixedsize_stack>("protected");
    }
    return RunComparison(argc, argv, reporter);
  }
  if (mode == "work_stealing") {
    const int threads = threads_flag.empty() ? 1 : atoi(threads_flag.c_str());
    if (threads < 1 || guards_off) {
      fprintf(stderr, "--fiber_threads must be >= 1; guards stay on\n");
      return 2;
    }
    WorkStealingThreads pool(threads);
    work_stealing = &pool;
    RegisterWorkStealing<BoostStackAllocator>("ours", threads);
    RegisterWorkStealing<ctx::fixedsize_stack>("fixedsize", threads);
    RegisterWorkStealing<ctx::protected_fixedsize_stack>("protected", threads);
    const int rc = RunComparison(argc, argv, reporter);
    work_stealing = nullptr;
    return rc;
  }
  fprintf(stderr, "--fiber_mode must be context or work_stealing\n");
  return 2;
}

}  // namespace
}  // namespace baseline
}  // namespace stackalloc

int main(int argc, char** argv) {
  return stackalloc::baseline::Main(argc, argv);
}
