// The sanitizer hooks stackalloc uses, each defined once, as a function that
// does nothing when its sanitizer is off (after abseil's
// tsan_mutex_interface.h): callers never need an #ifdef.
//
// AddressSanitizer: free stacks are poisoned, and a switch of stacks is
// bracketed by StartSwitchFiber / FinishSwitchFiber. ThreadSanitizer: each G
// is a TSan fiber, and a switch to a G is a switch of fibers.
//
// Every hook is always inlined: under TSan a fiber must change in the frame
// that then jumps, or that frame's exit would be recorded on the other
// fiber's shadow stack.
//
// Thread-safe (each hook acts on the calling thread or on the memory given).

#ifndef BASE_SANITIZERS_H_
#define BASE_SANITIZERS_H_

#include <cstddef>

#include "absl/base/attributes.h"
#include "absl/base/config.h"

#ifdef ABSL_HAVE_ADDRESS_SANITIZER
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif
#ifdef ABSL_HAVE_THREAD_SANITIZER
#include <sanitizer/tsan_interface.h>
#endif

namespace stackalloc {
namespace sanitizer {

#ifdef ABSL_HAVE_ADDRESS_SANITIZER
inline constexpr bool kAsan = true;
#else
inline constexpr bool kAsan = false;
#endif
#ifdef ABSL_HAVE_THREAD_SANITIZER
inline constexpr bool kTsan = true;
#else
inline constexpr bool kTsan = false;
#endif

// Marks [p, p + n) unaddressable / addressable again (ASan).
ABSL_ATTRIBUTE_ALWAYS_INLINE inline void PoisonMemory(const void* p, size_t n) {
#ifdef ABSL_HAVE_ADDRESS_SANITIZER
  ASAN_POISON_MEMORY_REGION(p, n);
#else
  (void)p;
  (void)n;
#endif
}

ABSL_ATTRIBUTE_ALWAYS_INLINE inline void UnpoisonMemory(const void* p,
                                                        size_t n) {
#ifdef ABSL_HAVE_ADDRESS_SANITIZER
  ASAN_UNPOISON_MEMORY_REGION(p, n);
#else
  (void)p;
  (void)n;
#endif
}

// ASan: the calling thread is about to run on [bottom, bottom + size).
// `fake_stack_save` receives the current fake stack, or is nullptr when the
// current stack will never be resumed (ASan then drops its fake frames).
ABSL_ATTRIBUTE_ALWAYS_INLINE inline void StartSwitchFiber(
    void** fake_stack_save, const void* bottom, size_t size) {
#ifdef ABSL_HAVE_ADDRESS_SANITIZER
  __sanitizer_start_switch_fiber(fake_stack_save, bottom, size);
#else
  (void)fake_stack_save;
  (void)bottom;
  (void)size;
#endif
}

// ASan: the first thing on the stack just switched to, with what the
// matching StartSwitchFiber saved when this stack was left (or nullptr).
ABSL_ATTRIBUTE_ALWAYS_INLINE inline void FinishSwitchFiber(
    void* fake_stack_save) {
#ifdef ABSL_HAVE_ADDRESS_SANITIZER
  __sanitizer_finish_switch_fiber(fake_stack_save, nullptr, nullptr);
#else
  (void)fake_stack_save;
#endif
}

// TSan fibers: a G's own, the running thread's, and the switch between them.
// Without TSan they are nullptr and the switch does nothing.
ABSL_ATTRIBUTE_ALWAYS_INLINE inline void* CreateFiber() {
#ifdef ABSL_HAVE_THREAD_SANITIZER
  return __tsan_create_fiber(0);
#else
  return nullptr;
#endif
}

ABSL_ATTRIBUTE_ALWAYS_INLINE inline void DestroyFiber(void* fiber) {
#ifdef ABSL_HAVE_THREAD_SANITIZER
  __tsan_destroy_fiber(fiber);
#else
  (void)fiber;
#endif
}

ABSL_ATTRIBUTE_ALWAYS_INLINE inline void* CurrentFiber() {
#ifdef ABSL_HAVE_THREAD_SANITIZER
  return __tsan_get_current_fiber();
#else
  return nullptr;
#endif
}

ABSL_ATTRIBUTE_ALWAYS_INLINE inline void SwitchToFiber(void* fiber) {
#ifdef ABSL_HAVE_THREAD_SANITIZER
  __tsan_switch_to_fiber(fiber, 0);
#else
  (void)fiber;
#endif
}

}  // namespace sanitizer
}  // namespace stackalloc

// Functions whose frames never return (a context's entry, the last switch
// away from a stack about to be freed) must not tell ThreadSanitizer they were
// entered, or each would leave a frame on the fiber's shadow stack.
#ifdef ABSL_HAVE_THREAD_SANITIZER
#define STACKALLOC_NO_TSAN_FRAME __attribute__((no_sanitize("thread")))
#else
#define STACKALLOC_NO_TSAN_FRAME
#endif

#endif  // BASE_SANITIZERS_H_
