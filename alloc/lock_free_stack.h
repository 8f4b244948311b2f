// LockFreeStack: a Treiber stack (lock-free LIFO) of caller-owned nodes, with
// ABA protection.
//
// The head is one 64-bit word: the top node's address (below 2^48, aligned to
// alignof(T) >= 64, so 42 bits say it) and a 22-bit version tag. Every
// successful push or pop bumps the tag, so a pop that read a stale top and a
// stale `next` fails its CAS instead of corrupting the list: ABA would need
// a multiple of 2^22 (4 million) operations to complete, ending with the same
// top, while one thread sits between its load and its CAS.
//
// Nodes are type-stable: their memory must stay mapped and hold a node as
// long as the stack may be popped, because a racing pop reads `next` from a
// node another thread has already taken. The link is a std::atomic so that
// read is not a data race; the node's other fields are published by the
// release CAS of Push() and acquired by the CAS of Pop().
//
// Thread-safe; lock-free. x86-64 and AArch64 (user addresses below 2^48).

#ifndef ALLOC_LOCK_FREE_STACK_H_
#define ALLOC_LOCK_FREE_STACK_H_

#include <atomic>
#include <cstdint>

#include "base/throw.h"

namespace stackalloc {

namespace internal {
struct NoStackHooks {
  static void BeforePopCas() {}
};
}  // namespace internal

// What LockFreeStack::Sift's visitor does with a node it was handed: puts
// it back, takes it, or takes it and ends the sift.
enum class SiftAction { kPutBack, kTake, kTakeAndStop };

// `Hooks::BeforePopCas()` runs between reading the top's link and the CAS
// that pops it; tests use it to interleave other operations exactly there.
template <typename T, std::atomic<T*> T::*kLink,
          typename Hooks = internal::NoStackHooks>
class LockFreeStack {
  static_assert(alignof(T) >= 64, "nodes must be 64-byte aligned");

 public:
  constexpr LockFreeStack() = default;
  LockFreeStack(const LockFreeStack&) = delete;
  LockFreeStack& operator=(const LockFreeStack&) = delete;

  void Push(T* node) {
    if (reinterpret_cast<uintptr_t>(node) >> kAddressBits != 0) {
      Throw("LockFreeStack: node address above 2^48");
    }
    uint64_t head = head_.load(std::memory_order_relaxed);
    do {
      (node->*kLink).store(Ptr(head), std::memory_order_relaxed);
    } while (!head_.compare_exchange_weak(head, Pack(node, Tag(head) + 1),
                                          std::memory_order_release,
                                          std::memory_order_relaxed));
  }

  // Returns the top node, or nullptr if the stack is empty.
  T* Pop() {
    uint64_t head = head_.load(std::memory_order_acquire);
    for (;;) {
      T* node = Ptr(head);
      if (node == nullptr) return nullptr;
      T* next = (node->*kLink).load(std::memory_order_relaxed);
      Hooks::BeforePopCas();
      if (head_.compare_exchange_weak(head, Pack(next, Tag(head) + 1),
                                      std::memory_order_acquire,
                                      std::memory_order_acquire)) {
        return node;
      }
    }
  }

  // Detaches every node at once; returns the former top (follow kLink to
  // walk the rest, which the caller now owns exclusively).
  T* PopAll() {
    uint64_t head = head_.load(std::memory_order_acquire);
    while (Ptr(head) != nullptr &&
           !head_.compare_exchange_weak(head, Pack(nullptr, Tag(head) + 1),
                                        std::memory_order_acquire,
                                        std::memory_order_acquire)) {
    }
    return Ptr(head);
  }

  // Pops up to `max` nodes and hands each to visit(T*), which returns a
  // SiftAction. A node taken is the visitor's. The nodes put back return to
  // the stack, in the order they were popped, when the sift ends (after
  // kTakeAndStop, `max` pops, or an empty stack): a node the visitor cannot
  // use now is neither lost nor handed to it twice in one sift, while other
  // threads push and pop as usual. The visitor must not push a node it puts
  // back (its link holds the set-aside list). Returns the nodes popped.
  template <typename F>
  int Sift(int max, F&& visit) {
    T* aside = nullptr;
    int popped = 0;
    while (popped < max) {
      T* node = Pop();
      if (node == nullptr) break;
      ++popped;
      const SiftAction action = visit(node);
      if (action == SiftAction::kTakeAndStop) break;
      if (action == SiftAction::kPutBack) {
        (node->*kLink).store(aside, std::memory_order_relaxed);
        aside = node;
      }
    }
    while (aside != nullptr) {  // Last popped first: the old order again.
      T* node = aside;
      aside = (node->*kLink).load(std::memory_order_relaxed);
      Push(node);
    }
    return popped;
  }

  bool empty() const {
    return Ptr(head_.load(std::memory_order_relaxed)) == nullptr;
  }

 private:
  static constexpr int kAddressBits = 48;
  static constexpr int kAlignBits = 6;  // alignof(T) >= 64.
  static constexpr int kTagShift = kAddressBits - kAlignBits;
  static constexpr uint64_t kPtrMask = (uint64_t{1} << kTagShift) - 1;

  static T* Ptr(uint64_t head) {
    return reinterpret_cast<T*>(static_cast<uintptr_t>(head & kPtrMask)
                                << kAlignBits);
  }
  static uint64_t Tag(uint64_t head) { return head >> kTagShift; }
  static uint64_t Pack(T* node, uint64_t tag) {
    return (static_cast<uint64_t>(reinterpret_cast<uintptr_t>(node)) >>
            kAlignBits) |
           (tag << kTagShift);
  }

  std::atomic<uint64_t> head_{0};
};

}  // namespace stackalloc

#endif  // ALLOC_LOCK_FREE_STACK_H_
