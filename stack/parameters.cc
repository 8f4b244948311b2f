#include "stack/parameters.h"

#include <atomic>

#include "absl/base/attributes.h"
#include "base/stack_sizes.h"
#include "sched/mcache.h"

namespace stackalloc {
namespace internal {
namespace {

struct Limit {
  constexpr explicit Limit(int order) : v(DefaultStackCacheLimit(order)) {}
  std::atomic<int> v;
};

ABSL_CONST_INIT PerOrder<Limit> cache_limits = PerOrder<Limit>::Make();
ABSL_CONST_INIT std::atomic<bool> guards_enabled{true};
ABSL_CONST_INIT std::atomic<bool> wipe_enabled{false};
ABSL_CONST_INIT std::atomic<size_t> scavenge_threshold{0};

}  // namespace

int CacheLimit(int order) {
  return cache_limits.at[order].v.load(std::memory_order_relaxed);
}

void SetCacheLimit(int order, int limit) {
  cache_limits.at[order].v.store(limit, std::memory_order_relaxed);
}

bool GuardsEnabled() { return guards_enabled.load(std::memory_order_relaxed); }

bool SetGuardsEnabled(bool on) {
  return guards_enabled.exchange(on, std::memory_order_relaxed);
}

bool WipeEnabled() { return wipe_enabled.load(std::memory_order_seq_cst); }

bool SetWipeEnabled(bool on) {
  return wipe_enabled.exchange(on, std::memory_order_seq_cst);
}

size_t ScavengeThreshold() {
  return scavenge_threshold.load(std::memory_order_relaxed);
}

void SetScavengeThreshold(size_t bytes) {
  scavenge_threshold.store(bytes, std::memory_order_relaxed);
}

}  // namespace internal
}  // namespace stackalloc
