// Invariants that run: STACKALLOC_CHECK (always on) and STACKALLOC_DCHECK
// (debug builds only), after tcmalloc's TC_CHECK / TC_ASSERT.
//
//   STACKALLOC_CHECK(cond)         dies with "fatal error: check failed:
//                                  <file>:<line>: <cond>" unless cond holds;
//   STACKALLOC_CHECK_LE(a, b) ...  the same, and prints both values (as
//                                  int64_t); also _EQ, _NE, _LT, _GE, _GT;
//   STACKALLOC_DCHECK(cond) ...    the same in debug builds (NDEBUG not
//                                  defined) and in the checked build
//                                  (STACKALLOC_CHECKED); otherwise cond is
//                                  type-checked but not evaluated.
//
// Both go through Throw() (base/throw.h): nothing allocates on the way down,
// so they may sit on the allocator's own paths. Put CHECKs at slow-path
// boundaries, where a broken invariant would otherwise corrupt memory
// silently; keep fast paths free of them.

#ifndef BASE_CHECK_H_
#define BASE_CHECK_H_

#include <cstdint>

#include "absl/base/optimization.h"
#include "base/throw.h"

#define STACKALLOC_CHECK(cond) \
  (ABSL_PREDICT_TRUE(cond)     \
       ? static_cast<void>(0)  \
       : ::stackalloc::internal::CheckFailed(__FILE__, __LINE__, #cond))

#define STACKALLOC_INTERNAL_CHECK_OP(op, a, b)                             \
  do {                                                                     \
    const int64_t stackalloc_check_a = static_cast<int64_t>(a);            \
    const int64_t stackalloc_check_b = static_cast<int64_t>(b);            \
    if (ABSL_PREDICT_FALSE(!(stackalloc_check_a op stackalloc_check_b))) { \
      ::stackalloc::internal::CheckOpFailed(                               \
          __FILE__, __LINE__, #a " " #op " " #b, stackalloc_check_a,       \
          stackalloc_check_b);                                             \
    }                                                                      \
  } while (0)

#define STACKALLOC_CHECK_EQ(a, b) STACKALLOC_INTERNAL_CHECK_OP(==, a, b)
#define STACKALLOC_CHECK_NE(a, b) STACKALLOC_INTERNAL_CHECK_OP(!=, a, b)
#define STACKALLOC_CHECK_LT(a, b) STACKALLOC_INTERNAL_CHECK_OP(<, a, b)
#define STACKALLOC_CHECK_LE(a, b) STACKALLOC_INTERNAL_CHECK_OP(<=, a, b)
#define STACKALLOC_CHECK_GT(a, b) STACKALLOC_INTERNAL_CHECK_OP(>, a, b)
#define STACKALLOC_CHECK_GE(a, b) STACKALLOC_INTERNAL_CHECK_OP(>=, a, b)

// True in debug builds and in the checked build: DCHECKs run, and the
// allocator checks every stack it receives at the call (see stackalloc.h).
#if !defined(NDEBUG) || defined(STACKALLOC_CHECKED)
#define STACKALLOC_DEBUG_CHECKS 1
#else
#define STACKALLOC_DEBUG_CHECKS 0
#endif

#if STACKALLOC_DEBUG_CHECKS
#define STACKALLOC_DCHECK(cond) STACKALLOC_CHECK(cond)
#define STACKALLOC_DCHECK_EQ(a, b) STACKALLOC_CHECK_EQ(a, b)
#define STACKALLOC_DCHECK_LT(a, b) STACKALLOC_CHECK_LT(a, b)
#define STACKALLOC_DCHECK_LE(a, b) STACKALLOC_CHECK_LE(a, b)
#else
// sizeof: the condition still compiles (no rot) but never runs.
#define STACKALLOC_DCHECK(cond) static_cast<void>(sizeof(!(cond)))
#define STACKALLOC_DCHECK_EQ(a, b) static_cast<void>(sizeof((a) == (b)))
#define STACKALLOC_DCHECK_LT(a, b) static_cast<void>(sizeof((a) < (b)))
#define STACKALLOC_DCHECK_LE(a, b) static_cast<void>(sizeof((a) <= (b)))
#endif

#endif  // BASE_CHECK_H_
