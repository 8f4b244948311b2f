// The runtime's construction: its Ms' state and threads, its statistics,
// and the locks it holds across fork(). The scheduler loop is in
// schedule.cc, the G lifecycle in lifecycle.cc.

#include "proc/runtime.h"

#include <atomic>
#include <cstdint>
#include <memory>

#include "proc/types.h"

namespace stackalloc {
namespace proc {
namespace internal {

Runtime::Runtime(const Options& options)
    : options_(options), nprocs_(options.gomaxprocs) {
  for (int i = 0; i < nprocs_; ++i) {
    scheds_.push_back(std::make_unique<Sched>());
    scheds_.back()->id = i;
    scheds_.back()->stack_source = &options_.stack_source;
  }
}

Runtime::~Runtime() = default;

void Runtime::StartMs() {
  for (int i = 0; i < nprocs_; ++i) {
    threads_.emplace_back(&Runtime::Mstart, this, scheds_[i].get());
  }
}

ProcStats Runtime::Read() const {
  ProcStats st;
  st.g_allocs = static_cast<uint64_t>(g_allocs_.load());
  for (const auto& s : scheds_) {
    st.gs_started += s->gs_started.value();
    st.gs_finished += s->gs_finished.value();
    st.segments += s->segments.value();
    st.large_segments += s->large_segments.value();
    st.segments_reused += s->segments_reused.value();
    st.gs_stolen += s->gs_stolen.value();
    st.g_allocs += s->g_allocs.value();
  }
  return st;
}

void Runtime::LockAll() {
  mu_.Lock();
  gfree_mu_.Lock();
  for (auto& s : scheds_) s->note_mu.Lock();
}

void Runtime::UnlockAll() {
  for (auto& s : scheds_) s->note_mu.Unlock();
  gfree_mu_.Unlock();
  mu_.Unlock();
}

}  // namespace internal
}  // namespace proc
}  // namespace stackalloc
