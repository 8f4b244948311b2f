// The runtime's construction: its Ms' state and threads, its statistics,
// and the locks it holds across fork(). The scheduler loop is in
// schedule.cc, the G lifecycle in lifecycle.cc.

#include "proc/runtime.h"

#include <atomic>
#include <cstdint>
#include <memory>

#include "proc/types.h"
#include "stackalloc.h"

namespace stackalloc {
namespace proc {
namespace internal {

Runtime::Runtime(const Options& options)
    : options_(options),
      nprocs_(options.gomaxprocs),
      wipe_stacks_(StackWipe()) {
  for (int i = 0; i < nprocs_; ++i) {
    allp_.push_back(std::make_unique<P>());
    allp_.back()->id = i;
    allp_.back()->stack_source = &options_.stack_source;
  }
}

Runtime::~Runtime() = default;

void Runtime::StartMs() {
  for (int i = 0; i < nprocs_; ++i) {
    threads_.emplace_back(&Runtime::Mstart, this, allp_[i].get());
  }
}

ProcStats Runtime::Read() const {
  ProcStats st;
  st.g_allocs = static_cast<uint64_t>(g_allocs_.load());
  for (const auto& p : allp_) {
    st.gs_started += p->gs_started.value();
    st.gs_finished += p->gs_finished.value();
    st.segments += p->segments.value();
    st.large_segments += p->large_segments.value();
    st.segments_reused += p->segments_reused.value();
    st.gs_stolen += p->gs_stolen.value();
    st.g_allocs += p->g_allocs.value();
  }
  return st;
}

void Runtime::LockAll() {
  mu_.Lock();
  gfree_mu_.Lock();
  for (auto& p : allp_) p->note_mu.Lock();
}

void Runtime::UnlockAll() {
  for (auto& p : allp_) p->note_mu.Unlock();
  gfree_mu_.Unlock();
  mu_.Unlock();
}

}  // namespace internal
}  // namespace proc
}  // namespace stackalloc
