#include "testing/model.h"

#include <atomic>
#include <condition_variable>
#include <cstring>
#include <map>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "alloc/chunk.h"
#include "alloc/sys_alloc.h"
#include "sched/m.h"
#include "stack/test_peer.h"
#include "stackalloc.h"
#include "stats/mstats.h"
#include "testing/test_helpers.h"

namespace stackalloc {
namespace model {
namespace {

using internal::StackallocTestPeer;
using testing_util::StackStatsDiff;

constexpr int kMaxLive = 400;
constexpr size_t kMark = 64;  // Bytes written at each end of a stack.

// Injected failures: sources that refuse while told to, and count it.
std::atomic<bool> refuse_chunks{false}, refuse_nodes{false},
    refuse_records{false};
std::atomic<int64_t> faults{0};

void* ChunkSource(size_t n) {
  if (refuse_chunks.load()) return faults.fetch_add(1), nullptr;
  return SysAllocAligned(n, kChunkGranule);
}
void* NodeSource(size_t n) {
  if (refuse_nodes.load()) return faults.fetch_add(1), nullptr;
  return SysAlloc(n);
}
void* RecordSource(size_t n) {
  if (refuse_records.load()) return faults.fetch_add(1), nullptr;
  return SysAlloc(n);
}

struct Live {
  size_t n;      // The size asked for.
  size_t bytes;  // What it took.
  int thread;    // Where it was allocated.
  uint8_t pattern;
};

class Driver {
 public:
  Driver(Source& source, int64_t max_steps, int threads)
      : source_(source), max_steps_(max_steps), nthreads_(threads) {}

  Result Run();

 private:
  static constexpr int kDone = -1;
  static constexpr int kRespawn = -2;

  void SlotMain(int id);
  // Runs steps on slot `id` until one hands the turn over; returns the next
  // turn (another slot, kRespawn or kDone).
  int RunSteps(int id);
  // One operation; false ends the run (an error, or the source ran dry).
  bool Step(int id, int* next_turn);
  bool Alloc(int id);
  bool Free(int id);
  bool Check();
  bool Fail(const std::string& what);

  size_t RandomSize();
  uint32_t Below(uint32_t n) { return source_.Next() % n; }

  Source& source_;
  const int64_t max_steps_;
  const int nthreads_;
  Result result_;
  MemStats base_;

  std::map<uintptr_t, Live> live_;  // By address, to find overlaps.
  std::vector<uintptr_t> keys_;     // The same, to pick one at random.
  int64_t inuse_[kNumStackOrders] = {};
  int64_t large_ = 0;
  int64_t total_ = 0;

  std::mutex mu_;
  std::condition_variable cv_;
  int turn_ = 0;
  int respawn_ = -1;
  std::vector<std::thread> threads_;
};

size_t Driver::RandomSize() {
  const uint32_t r = Below(100);
  if (r < 3) return kMaxOrderStack + 1 + Below(3 * kMaxOrderStack);
  const int order = r < 40 ? 0 : r < 60 ? 1 : r < 75 ? 2 : 3 + Below(6);
  const size_t size = OrderStackSize(order);
  if (order > 0 && Below(4) == 0) return size - Below(size / 2);
  if (order == 0 && Below(8) == 0) return 1 + Below(kFixedStack);
  return size;
}

bool Driver::Fail(const std::string& what) {
  result_.ok = false;
  result_.error = "step " + std::to_string(result_.steps) + ": " + what;
  return false;
}

bool Driver::Alloc(int id) {
  const size_t n = RandomSize();
  const MemStats before = ReadMemStats();
  auto* p = static_cast<uint8_t*>(stackalloc(n));
  if (p == nullptr) {
    if (!refuse_chunks.load() && !refuse_nodes.load() &&
        !refuse_records.load()) {
      return Fail("stackalloc(" + std::to_string(n) + ") refused, no fault");
    }
    // No stack statistic moves; the allocator's own records obtained before
    // the refusal stay for later use, and may count (stackalloc.h).
    const MemStats after = ReadMemStats();
    if (after.stacks_meta_sys < before.stacks_meta_sys) {
      return Fail("a refused stackalloc shrank stacks_meta_sys");
    }
    const std::string diff = StackStatsDiff(before, after);
    if (!diff.empty()) {
      return Fail("a refused stackalloc(" + std::to_string(n) +
                  ") changed the statistics: " + diff);
    }
    ++result_.refused;
    return true;
  }
  const auto a = reinterpret_cast<uintptr_t>(p);
  const size_t bytes = StackBytes(n);
  auto next = live_.lower_bound(a);
  if (next != live_.end() && next->first < a + bytes) {
    return Fail("a stack handed out while live (overlaps the next)");
  }
  if (next != live_.begin() &&
      std::prev(next)->first + std::prev(next)->second.bytes > a) {
    return Fail("a stack handed out while live (overlaps the previous)");
  }
  const auto pattern = static_cast<uint8_t>(source_.Next());
  memset(p, pattern, kMark);
  memset(p + bytes - kMark, pattern, kMark);
  live_.emplace(a, Live{n, bytes, id, pattern});
  keys_.push_back(a);
  const int order = StackOrder(n);
  (order >= 0 ? inuse_[order] : large_) += static_cast<int64_t>(bytes);
  total_ += static_cast<int64_t>(bytes);
  ++result_.allocs;
  return true;
}

bool Driver::Free(int id) {
  const size_t i = Below(static_cast<uint32_t>(keys_.size()));
  const uintptr_t a = keys_[i];
  keys_[i] = keys_.back();
  keys_.pop_back();
  const Live s = live_.at(a);
  live_.erase(a);
  const auto* p = reinterpret_cast<const uint8_t*>(a);
  for (size_t j = 0; j < kMark; ++j) {
    if (p[j] != s.pattern || p[s.bytes - kMark + j] != s.pattern) {
      return Fail("a live stack's contents changed");
    }
  }
  stackfree(reinterpret_cast<void*>(a), s.n);
  const int order = StackOrder(s.n);
  (order >= 0 ? inuse_[order] : large_) -= static_cast<int64_t>(s.bytes);
  total_ -= static_cast<int64_t>(s.bytes);
  ++result_.frees;
  if (s.thread != id) ++result_.cross_frees;
  return true;
}

bool Driver::Check() {
  const MemStats st = ReadMemStats();
  if (static_cast<int64_t>(st.stacks_inuse - base_.stacks_inuse) != total_) {
    return Fail("stacks_inuse " + std::to_string(st.stacks_inuse) +
                " != model " + std::to_string(base_.stacks_inuse + total_));
  }
  if (static_cast<int64_t>(st.large_stacks_inuse - base_.large_stacks_inuse) !=
      large_) {
    return Fail("large_stacks_inuse differs from the model");
  }
  for (int k = 0; k < kNumStackOrders; ++k) {
    const StackOrderStats& o = st.orders[k];
    const uint64_t size = OrderStackSize(k);
    if (static_cast<int64_t>(o.inuse - base_.orders[k].inuse) != inuse_[k]) {
      return Fail("order " + std::to_string(k) + ": inuse differs");
    }
    const uint64_t pool = StackallocTestPeer::PoolStacks(k) * size;
    const uint64_t released = StackallocTestPeer::PoolReleasedStacks(k) * size;
    if (o.pooled + released != pool) {
      return Fail("order " + std::to_string(k) + ": pooled " +
                  std::to_string(o.pooled) + " + released one by one " +
                  std::to_string(released) + " != pool " +
                  std::to_string(pool));
    }
    if (o.sys < o.inuse + o.cached + o.pooled) {
      return Fail("order " + std::to_string(k) + ": sys below its stacks");
    }
  }
  return true;
}

bool Driver::Step(int id, int* next_turn) {
  if (result_.steps >= max_steps_ || source_.Done()) {
    *next_turn = kDone;
    return false;
  }
  ++result_.steps;
  const uint32_t r = Below(1000);
  bool ok = true;
  if (r < 80 && nthreads_ > 1) {  // Hand over to another thread.
    *next_turn = static_cast<int>((id + 1 + Below(nthreads_ - 1)) % nthreads_);
    return Check();
  } else if (r < 84) {  // This thread exits; a new one takes its place.
    ++result_.thread_exits;
    respawn_ = id;
    *next_turn = kRespawn;
    return Check();
  } else if (r < 88) {
    const size_t released = ScavengeStacks();
    (void)released;
    ++result_.scavenges;
  } else if (r < 100) {
    const int order = static_cast<int>(Below(kNumStackOrders));
    SetStackCacheLimit(2 * (1 + static_cast<int>(Below(32))),
                       OrderStackSize(order));
  } else if (r < 104) {
    refuse_chunks = !refuse_chunks;
  } else if (r < 108) {
    refuse_nodes = !refuse_nodes;
  } else if (r < 112) {
    refuse_records = !refuse_records;
  } else if (keys_.empty() ||
             (r < 560 && static_cast<int>(keys_.size()) < kMaxLive)) {
    ok = Alloc(id);
  } else {
    ok = Free(id);
  }
  if (ok) ok = Check();
  if (!ok) *next_turn = kDone;
  return ok;
}

int Driver::RunSteps(int id) {
  int next = id;
  while (next == id && Step(id, &next)) {
  }
  return next;
}

void Driver::SlotMain(int id) {
  std::unique_lock<std::mutex> l(mu_);
  for (;;) {
    cv_.wait(l, [&] { return turn_ == id || turn_ == kDone; });
    if (turn_ == kDone) return;
    l.unlock();
    const int next = RunSteps(id);
    l.lock();
    turn_ = next;
    cv_.notify_all();
    if (next == kRespawn) return;  // The thread exits; its M goes idle.
  }
}

Result Driver::Run() {
  StackallocTestPeer::SetChunkSource(&ChunkSource);
  StackallocTestPeer::SetNodeSource(&NodeSource);
  StackallocTestPeer::SetRecordSource(&RecordSource);
  const int64_t faults0 = faults.load();
  base_ = ReadMemStats();
  for (int i = 0; i < nthreads_; ++i) {
    threads_.emplace_back(&Driver::SlotMain, this, i);
  }
  {
    std::unique_lock<std::mutex> l(mu_);
    for (;;) {
      cv_.wait(l, [&] { return turn_ == kDone || turn_ == kRespawn; });
      if (turn_ == kDone) break;
      threads_[respawn_].join();
      threads_[respawn_] = std::thread(&Driver::SlotMain, this, respawn_);
      turn_ = respawn_;
      cv_.notify_all();
    }
  }
  for (auto& t : threads_) t.join();
  refuse_chunks = refuse_nodes = refuse_records = false;
  for (const auto& [a, s] : live_) stackfree(reinterpret_cast<void*>(a), s.n);
  for (int k = 0; k < kNumStackOrders; ++k) {
    SetStackCacheLimit(DefaultStackCacheLimit(k), OrderStackSize(k));
  }
  StackallocTestPeer::SetChunkSource(nullptr);
  StackallocTestPeer::SetNodeSource(nullptr);
  StackallocTestPeer::SetRecordSource(nullptr);
  result_.faults_injected = faults.load() - faults0;
  return result_;
}

}  // namespace

Result Run(Source& source, int64_t max_steps, int threads) {
  Driver d(source, max_steps, threads < 2 ? 2 : threads > 8 ? 8 : threads);
  return d.Run();
}

}  // namespace model
}  // namespace stackalloc
