// stackalloc's stacks for Boost.Context and Boost.Fiber: a model of Boost's
// StackAllocator concept (boost/context/fixedsize_stack.hpp and the
// "Stack allocation" chapter of Boost.Context's documentation define it: a
// copyable class with `stack_context allocate()` and
// `void deallocate(stack_context&)`), so that moving to our stacks is one line
// in a Boost user's code:
//
//   boost::context::fiber f{std::allocator_arg,
//                           stackalloc::BoostStackAllocator(64 << 10), fn};
//   boost::fibers::fiber g{std::allocator_arg,
//                          stackalloc::BoostStackAllocator(), fn};
//
// What a user gets over Boost's own allocators: every stack has a guard page
// below it, with no mapping per stack (protected_fixedsize_stack's mmap +
// mprotect + munmap per fiber cost thousands of ns, and about 32,700 live
// stacks exhaust Linux's default vm.max_map_count); an overflow dies with
// "fatal error: stack overflow: <size>-byte stack [0x..., 0x...) on M <id>
// (fault at ...)" instead of a bare SIGSEGV; allocation and deallocation take
// no lock and no system call in the common case, on any thread; and the
// stacks are counted exactly in stackalloc::ReadMemStats().
//
// Sizes: a stack of `size` bytes is a stack of stackalloc's order for it:
// every power of two from 4 KiB to 1 MiB (a size in between gets the next
// one up), whole pages above 1 MiB (each such stack a mapping of its own:
// slow, as protected_fixedsize_stack). allocate() reports that usable size in
// stack_context::size; the guard page is not part of it.
//
// Thread-safety: copies are independent (one size_t; Boost keeps a copy in
// every fiber's record), and any thread may allocate, and deallocate a stack
// that any other thread allocated, from any stack: its own, or a fiber's
// (Boost deallocates a finished fiber's stack on the stack of the context
// that runs next, and Boost.Fiber's work_stealing finishes fibers on other
// threads than the one that created them). The calling thread is bound to an
// M (stackalloc's per-thread record: its stack caches, its alternate signal
// stack) on its first call.
//
// Not from a G of stackalloc's own fiber runtime (//proc): there stackalloc's
// contract applies, and the call dies with "fatal error: stackalloc not on
// scheduler stack".
//
// Overflow reports: the SIGSEGV handler that names the stack runs on the
// alternate signal stack of the faulting thread's M. A thread that runs
// fibers but has never allocated or freed one (a Boost.Fiber work_stealing
// thread that only steals) should call PrepareThread() first; otherwise an
// overflow on it dies of a plain SIGSEGV, without the report.

#ifndef BOOST_STACK_ALLOCATOR_H_
#define BOOST_STACK_ALLOCATOR_H_

#include <cstddef>

#include "absl/base/attributes.h"
#include "absl/base/optimization.h"
#include "base/stack_sizes.h"
#include "boost/context/stack_context.hpp"
#include "boost/context/stack_traits.hpp"
#include "stackalloc.h"

#if defined(BOOST_USE_VALGRIND)
#include <valgrind/valgrind.h>
#endif

namespace stackalloc {

namespace internal {
// Throws std::bad_alloc (out of line: the fast path stays short).
[[noreturn]] ABSL_ATTRIBUTE_COLD void ThrowBadAlloc();
// Dies with "fatal error: BoostStackAllocator: deallocate of an empty
// stack_context".
[[noreturn]] ABSL_ATTRIBUTE_COLD void DieEmptyStackContext();
}  // namespace internal

class BoostStackAllocator {
 public:
  // Boost's allocators name their traits; Boost.Fiber reads them.
  using traits_type = boost::context::stack_traits;

  // Stacks of at least `size` bytes (default: Boost's default, 128 KiB on
  // Linux). A size of 0 dies at allocate() ("fatal error: stackalloc:
  // zero-sized stack"); a size above 2^40 bytes makes allocate() throw.
  explicit BoostStackAllocator(
      std::size_t size = traits_type::default_size()) noexcept
      : class_(UsableSize(size)) {}

  // A stack: sp is its highest address (one past its last byte; stacks grow
  // down), size its usable bytes (see size()). Throws std::bad_alloc if the
  // OS refuses memory (then no statistic changed). Const, as deallocate():
  // Asio's spawn forwards the allocator it is given, so a const one (a
  // by-value capture of a lambda, say) reaches Boost.Context as const.
  boost::context::stack_context allocate() const {
    void* lo = stackalloc(class_);
    if (ABSL_PREDICT_FALSE(lo == nullptr)) internal::ThrowBadAlloc();
    boost::context::stack_context sctx;
    sctx.size = class_.size();
    sctx.sp = static_cast<char*>(lo) + sctx.size;
#if defined(BOOST_USE_VALGRIND)
    sctx.valgrind_stack_id = VALGRIND_STACK_REGISTER(sctx.sp, lo);
#endif
    return sctx;
  }

  // Gives back a stack that allocate() returned, from any copy of any
  // BoostStackAllocator. A stack_context that is not one dies with
  // stackfree's "fatal error: stackfree: ..." messages (see stackalloc.h:
  // at the call in debug and checked builds, at the latest when the stack
  // leaves its M's cache in the default build).
  void deallocate(boost::context::stack_context& sctx) const noexcept {
    if (ABSL_PREDICT_FALSE(sctx.sp == nullptr)) {
      internal::DieEmptyStackContext();
    }
#if defined(BOOST_USE_VALGRIND)
    VALGRIND_STACK_DEREGISTER(sctx.valgrind_stack_id);
#endif
    void* lo = static_cast<char*>(sctx.sp) - sctx.size;
    // Another allocator's stack (of another size) finds its cache from its
    // size.
    if (ABSL_PREDICT_TRUE(sctx.size == class_.size())) {
      stackfree(lo, class_);
    } else {
      stackfree(lo, sctx.size);
    }
  }

  // Usable bytes of each stack this allocator hands out.
  std::size_t size() const { return class_.size(); }

  // Binds the calling thread to an M now, if it has none, so that an
  // overflow of a fiber that runs on it is reported (see the top of this
  // file). Any allocate() or deallocate() does the same.
  static void PrepareThread();

  // The usable bytes of the stack stackalloc(n) returns (StackBytes,
  // base/stack_sizes.h), and n itself above kMaxStackRequest, so that
  // allocate() is refused (std::bad_alloc) rather than asked for 0 bytes.
  static constexpr std::size_t UsableSize(std::size_t n) {
    return n > kMaxStackRequest ? n : StackBytes(n);
  }

 private:
  // The request, resolved once: each allocate() finds its cache in one load.
  StackClass class_;
};

}  // namespace stackalloc

#endif  // BOOST_STACK_ALLOCATOR_H_
