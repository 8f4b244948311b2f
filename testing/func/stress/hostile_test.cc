// The 16-thread stress workload in a hostile neighbourhood: another SIGSEGV
// handler installed before ours (and faults of its own, on every thread),
// threads with signal stacks of their own, a sampling profiler's SIGPROF at
// a high rate (its handler reads the statistics and looks stacks up, which
// are async-signal-safe), and an address-space limit close to the
// workload's peak. At the end no stack was handed out twice, contents are
// intact, statistics exact, every thread's own signal stack is still its
// own, and every fault reached the handler it belonged to.

#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <thread>
#include <vector>

#include "base/sanitizers.h"
#include "gtest/gtest.h"
#include "stackalloc.h"
#include "stats/mstats.h"
#include "testing/func/stress/stress_workload.h"
#include "testing/process_info.h"

namespace stackalloc {
namespace {

using testing_util::RunStressWorkload;
using testing_util::StressOptions;
using testing_util::StressResult;

// The neighbour's SIGSEGV handler: faults on its own page are its own, and
// it leaves them by siglongjmp.
thread_local sigjmp_buf neighbour_jump;
std::atomic<int64_t> neighbour_faults{0};
char* neighbour_page = nullptr;

void NeighbourHandler(int, siginfo_t* info, void*) {
  if (info->si_addr != neighbour_page) _exit(70);  // Not its fault: ours.
  neighbour_faults.fetch_add(1);
  siglongjmp(neighbour_jump, 1);
}

// The profiler's SIGPROF handler: what a sampler would read.
std::atomic<int64_t> samples{0};
std::atomic<int64_t> samples_on_our_stacks{0};
void ProfilerHandler(int) {
  int here = 0;
  void* lo;
  size_t size;
  if (FindStack(&here, &lo, &size)) samples_on_our_stacks.fetch_add(1);
  const MemStats st = ReadMemStats();
  if (st.stacks_sys + 1 == 0) _exit(71);  // Keeps the read.
  samples.fetch_add(1);
}

TEST(HostileNeighbourhoodTest, SixteenThreadsAmongOtherHandlersAndLimits) {
  constexpr bool kSanitized = sanitizer::kAsan || sanitizer::kTsan;
  neighbour_page = static_cast<char*>(
      mmap(nullptr, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(neighbour_page, MAP_FAILED);
  // Installed before ours: ours goes in front with the first guarded stack.
  struct sigaction sa {};
  sa.sa_sigaction = &NeighbourHandler;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  ASSERT_EQ(sigaction(SIGSEGV, &sa, nullptr), 0);

  const MemStats before = ReadMemStats();
  // A first, shorter round learns what the workload's stacks take of the
  // address space; the second runs under a limit close to that (the
  // sanitizers reserve terabytes of shadow: no such limit there).
  const size_t vm0 = testing_util::VmSize();
  StressOptions warm;
  warm.generations = 1;
  warm.ops = 1000;
  StressResult warm_result = RunStressWorkload(warm);
  testing_util::ExpectExactAndFree(before, &warm_result);
  const size_t vm1 = testing_util::VmSize();
  struct rlimit old_limit;
  ASSERT_EQ(getrlimit(RLIMIT_AS, &old_limit), 0);
  if (!kSanitized) {
    // Room for the threads' own stacks (glibc maps each anew, 8 MiB and a
    // guard, or reuses a dead thread's), and a quarter more than the stacks
    // of the first round took: the second, three times as long, runs into
    // the limit after its threads started.
    const size_t threads = (warm.threads + 3) * ((size_t{8} << 20) + 65536);
    const struct rlimit limit = {vm1 + threads + (vm1 - vm0) / 4,
                                 old_limit.rlim_max};
    ASSERT_EQ(setrlimit(RLIMIT_AS, &limit), 0);
  }

  // The profiler: SIGPROF sent to the workload's threads one after another
  // as fast as a thread can (per-thread timers, as perf-like samplers use,
  // come at most once a tick), its handler on whatever stack the thread
  // runs (no SA_ONSTACK, as many profilers).
  struct sigaction prof {};
  prof.sa_handler = &ProfilerHandler;
  prof.sa_flags = SA_RESTART;
  sigemptyset(&prof.sa_mask);
  ASSERT_EQ(sigaction(SIGPROF, &prof, nullptr), 0);
  // Thread ids, not pthread_t: a thread may exit between the load and the
  // kill, and tgkill on a gone id fails where pthread_kill would touch
  // freed memory.
  std::vector<std::atomic<pid_t>> workers(16);
  for (auto& w : workers) w.store(0);
  std::atomic<bool> sampling{true};
  std::thread sampler([&] {
    while (sampling.load()) {
      for (auto& w : workers) {
        const pid_t tid = w.load();
        if (tid != 0) syscall(SYS_tgkill, getpid(), tid, SIGPROF);
      }
    }
  });

  std::vector<char> own_stacks(16 * (64 << 10));
  std::vector<stack_t> had(16);  // What each thread had before its own.
  std::atomic<int> own_stack_kept{0};
  std::atomic<int> faults_done{0};
  StressOptions options;
  // One generation: its threads start before the stacks use the address
  // space up (under the limit, a thread of a later one might not start).
  options.generations = 1;
  options.refusals_allowed = !kSanitized;
  options.on_thread_start = [&](int t) {
    workers[t].store(static_cast<pid_t>(syscall(SYS_gettid)));
    if (t % 2 == 0) {  // A signal stack of the thread's own.
      if (sigaltstack(nullptr, &had[t]) != 0) _exit(72);
      stack_t st{};
      st.ss_sp = &own_stacks[t * (64 << 10)];
      st.ss_size = 64 << 10;
      if (sigaltstack(&st, nullptr) != 0) _exit(72);
    }
    // A fault of the neighbour's, on every thread, chained through ours.
    // (A store TSan does not see: it never completes, but TSan would
    // record it, and call the threads' faults a race.)
    if (sigsetjmp(neighbour_jump, 1) == 0) {
      asm volatile("movb $1, (%0)" : : "r"(neighbour_page) : "memory");
    }
    faults_done.fetch_add(1);
  };
  options.on_thread_end = [&](int t) {
    // The sampler has hit a worker before worker 0 leaves (worker 0 stays
    // a target while it waits; else the sampler could first get a CPU once
    // all had gone).
    if (t == 0) {
      EXPECT_TRUE(testing_util::WaitUntil([&] { return samples.load() > 0; }));
    }
    workers[t].store(0);
    if (t % 2 != 0) return;
    stack_t st;
    if (sigaltstack(nullptr, &st) == 0 &&
        st.ss_sp == &own_stacks[t * (64 << 10)]) {
      own_stack_kept.fetch_add(1);
    }
    // A well-behaved thread puts back what it found (a sanitizer's, which
    // unmaps it at the thread's exit).
    if ((had[t].ss_flags & SS_DISABLE) != 0) {
      had[t].ss_size = 0;
    }
    had[t].ss_flags &= SS_DISABLE;
    if (sigaltstack(&had[t], nullptr) != 0) _exit(73);
  };
  const MemStats before_hostile = ReadMemStats();
  StressResult result = RunStressWorkload(options);

  sampling = false;
  sampler.join();
  ASSERT_EQ(setrlimit(RLIMIT_AS, &old_limit), 0);
  testing_util::ExpectExactAndFree(before_hostile, &result);
  EXPECT_EQ(neighbour_faults.load(), faults_done.load());
  EXPECT_EQ(faults_done.load(), options.threads * options.generations);
  EXPECT_EQ(own_stack_kept.load(), options.threads / 2 * options.generations);
  EXPECT_GT(samples.load(), 0);
  // The limit bit: memory was refused, and nothing else went wrong.
  if (!kSanitized) {
    EXPECT_GT(result.refused, 0);
  }
  printf("samples %lld (on our stacks %lld), refusals %lld\n",
         static_cast<long long>(samples.load()),
         static_cast<long long>(samples_on_our_stacks.load()),
         static_cast<long long>(result.refused));
}

}  // namespace
}  // namespace stackalloc
