// stackalloc's stacks for Boost.Context, Boost.Fiber and Boost.Asio: a model
// of Boost.Context's StackAllocator concept (a copyable class with
// `stack_context allocate()` and `void deallocate(stack_context&)`), so that
// moving to our stacks is one argument:
//
//   boost::context::fiber f{std::allocator_arg,
//                           stackalloc::BoostStackAllocator(64 << 10), fn};
//   boost::asio::spawn(ex, std::allocator_arg,
//                      stackalloc::BoostStackAllocator(), fn, token);
//
// The contract, said here once:
//
// Sizes: a stack of `size` bytes is a stack of stackalloc's order for it
// (a power of two from 4 KiB to 1 MiB; whole pages above, each such stack a
// mapping of its own), with a guard page below it. allocate() reports the
// usable bytes in stack_context::size; the guard is not part of them.
//
// Failure: allocate() throws std::bad_alloc where stackalloc returns nullptr
// (the OS refused memory; a size above 2^40 bytes); then no statistic
// changed.
//
// Threads and stacks: copies are independent (two words, trivially
// copyable: Boost keeps one in every fiber). Any thread may allocate, and
// deallocate what any other allocated, from any stack: its own or a
// fiber's (Boost frees a finished fiber's stack on the stack of the context
// that runs next; work_stealing and Asio finish fibers on other threads
// than their creator's). A thread's first call binds it to an M. Not from a
// G of stackalloc's own runtime (//proc): there stackalloc's contract
// applies ("fatal error: stackalloc not on scheduler stack").
//
// Overflow: a fiber that runs into its guard dies with "fatal error: stack
// overflow: <size>-byte stack [0x..., 0x...) on M <id> (fault at ...)", on
// the alternate signal stack of the thread's M. A thread that runs fibers
// but never allocated or freed one (a work_stealing thread that only
// steals, an io_context thread) calls PrepareThread() first, or an overflow
// there dies of a plain SIGSEGV.
//
// Misuse: deallocate() of an empty stack_context dies ("fatal error:
// BoostStackAllocator: deallocate of an empty stack_context"); any other
// stack_context that is not ours, or a stack given back twice, dies with
// stackfree's messages (stackalloc.h).
//
// Exceptions: Boost 1.81's switches do not carry the C++ runtime's
// exception state; do not switch fibers inside a catch block or while an
// exception unwinds (docs/boost.md, "Exceptions across fibers").

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
  // BoostStackAllocator (see "Misuse" above: in the default build a bad
  // stack_context dies at the latest when the stack leaves its M's cache).
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
  // overflow of a fiber that runs on it is reported (see "Overflow" above).
  // Any allocate() or deallocate() does the same.
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
