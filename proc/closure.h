// A G's function (private to //proc): a callable stored in the G record
// itself when it is at most kInlineSize bytes (and not over-aligned), so a
// spawn allocates nothing; a larger one goes to the heap, allocated and
// freed on g0. Owned by one G record; not thread-safe.

#ifndef PROC_CLOSURE_H_
#define PROC_CLOSURE_H_

#include <cstddef>
#include <exception>
#include <new>
#include <type_traits>
#include <utility>

#include "proc/out_of_line.h"

namespace stackalloc {
namespace proc {
namespace internal {

class Closure {
 public:
  static constexpr size_t kInlineSize = 64;

  Closure() = default;
  Closure(const Closure&) = delete;
  Closure& operator=(const Closure&) = delete;
  ~Closure() { Destroy(); }

  // Stores f. If copying (or allocating) f throws, the exception reaches
  // the caller and the closure stays empty. REQUIRES: empty.
  template <typename F>
  void Emplace(F&& f);

  // Calls the function, then destroys it. REQUIRES: not empty.
  void Run() {
    Op op = op_;
    op_ = nullptr;
    op(buf_, true);
  }

  // Destroys the function without calling it, if there is one.
  void Destroy() {
    if (op_ == nullptr) return;
    Op op = op_;
    op_ = nullptr;
    op(buf_, false);
  }

  bool empty() const { return op_ == nullptr; }

 private:
  using Op = void (*)(void* buf, bool call);

  // clang-tidy 14 takes sizeof(Fn) and alignof(Fn) for the same expression.
  template <typename Fn>
  // NOLINTNEXTLINE(misc-redundant-expression)
  static constexpr bool kFitsInline = sizeof(Fn) <= kInlineSize &&
                                      alignof(Fn) <= alignof(std::max_align_t);

  template <typename Fn>
  static void InlineOp(void* buf, bool call) {
    Fn* fn = std::launder(static_cast<Fn*>(buf));
    if (call) (*fn)();
    fn->~Fn();
  }

  template <typename Fn>
  static void HeapOp(void* buf, bool call);

  Op op_ = nullptr;
  alignas(std::max_align_t) unsigned char buf_[kInlineSize];
};

template <typename F>
void Closure::Emplace(F&& f) {
  using Fn = std::decay_t<F>;
  if constexpr (kFitsInline<Fn>) {
    ::new (static_cast<void*>(buf_)) Fn(std::forward<F>(f));
    op_ = &InlineOp<Fn>;
  } else {
    // The heap on g0: malloc may need more stack than a G keeps in reserve.
    // What the copy (or new) throws there is caught there and rethrown here,
    // to the spawner, as an inline closure's would be.
    Fn* heap = nullptr;
    std::exception_ptr thrown;
    auto make = [&]() noexcept {
      try {
        heap = new Fn(std::forward<F>(f));
      } catch (...) {
        thrown = std::current_exception();
      }
    };
    SystemstackCall(make);
    if (thrown) std::rethrow_exception(thrown);
    ::new (static_cast<void*>(buf_)) Fn*(heap);
    op_ = &HeapOp<Fn>;
  }
}

template <typename Fn>
void Closure::HeapOp(void* buf, bool call) {
  Fn* fn = *std::launder(static_cast<Fn**>(buf));
  if (call) (*fn)();
  auto release = [fn] { delete fn; };
  SystemstackCall(release);
}

}  // namespace internal
}  // namespace proc
}  // namespace stackalloc

#endif  // PROC_CLOSURE_H_
