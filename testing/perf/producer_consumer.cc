#include "testing/perf/producer_consumer.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "base/stack_sizes.h"

namespace stackalloc {
namespace baseline {
namespace {

// A bounded blocking queue of stacks. std::mutex so TSan sees it.
class StackQueue {
 public:
  explicit StackQueue(size_t capacity) : capacity_(capacity) {}
  void Push(void* p) {
    std::unique_lock<std::mutex> l(mu_);
    not_full_.wait(l, [&] { return q_.size() < capacity_; });
    q_.push_back(p);
    not_empty_.notify_one();
  }
  void* Pop() {  // nullptr once closed and drained.
    std::unique_lock<std::mutex> l(mu_);
    not_empty_.wait(l, [&] { return !q_.empty() || closed_; });
    if (q_.empty()) return nullptr;
    void* p = q_.front();
    q_.pop_front();
    not_full_.notify_one();
    return p;
  }
  void Close() {
    std::lock_guard<std::mutex> l(mu_);
    closed_ = true;
    not_empty_.notify_all();
  }

 private:
  const size_t capacity_;
  std::mutex mu_;
  std::condition_variable not_full_, not_empty_;
  std::deque<void*> q_;
  bool closed_ = false;
};

constexpr unsigned char kMark = 0x5c;

}  // namespace

PassResult PassStacks(const proc::StackSource& d, int producers, int consumers,
                      size_t queue, int64_t ops, size_t stack_size) {
  StackQueue q(queue);
  std::atomic<int64_t> left{ops};
  std::atomic<bool> ok{true};
  std::atomic<int64_t> live{0};
  std::atomic<int64_t> peak{0};
  auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> ps, cs;
  for (int p = 0; p < producers; ++p) {
    ps.emplace_back([&] {
      while (left.fetch_sub(1, std::memory_order_relaxed) > 0) {
        auto* s = static_cast<unsigned char*>(d.alloc(stack_size));
        if (s == nullptr) {
          ok = false;
          continue;
        }
        int64_t now = live.fetch_add(1, std::memory_order_relaxed) + 1;
        int64_t prev = peak.load(std::memory_order_relaxed);
        while (now > prev && !peak.compare_exchange_weak(prev, now)) {
        }
        s[0] = s[stack_size - 1] = kMark;
        q.Push(s);
      }
    });
  }
  for (int c = 0; c < consumers; ++c) {
    cs.emplace_back([&] {
      while (void* p = q.Pop()) {
        auto* s = static_cast<unsigned char*>(p);
        if (s[0] != kMark || s[stack_size - 1] != kMark) ok = false;
        live.fetch_sub(1, std::memory_order_relaxed);
        d.free(p, stack_size);
      }
    });
  }
  for (auto& t : ps) t.join();
  q.Close();
  for (auto& t : cs) t.join();
  PassResult r;
  r.ok = ok.load();
  r.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  r.peak_live = static_cast<uint64_t>(peak.load()) * stack_size;
  return r;
}

}  // namespace baseline
}  // namespace stackalloc
