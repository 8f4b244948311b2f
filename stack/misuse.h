// The contract's checks and their messages (private to //stack): where a
// call may run, and the ownership of every stack that changes hands, from
// the chunk records. Every message is printed without allocating
// (base/throw.h) and is the seed's where the seed has one.
//
// The default build checks a stack when it leaves an M's cache for the
// pool; debug and checked builds check every call (kCheckEveryCall). Each
// function runs on the thread bound to the M it is given.

#ifndef STACK_MISUSE_H_
#define STACK_MISUSE_H_

#include <cstddef>

#include "absl/base/attributes.h"
#include "alloc/chunk.h"
#include "base/check.h"
#include "sched/m.h"

namespace stackalloc {
namespace internal {

// The state of a stack in an M's cache, and of one handed out. The default
// build does not tell them apart (its fast paths never touch the records);
// debug and checked builds do, and check every call.
inline constexpr bool kCheckEveryCall = STACKALLOC_DEBUG_CHECKS != 0;
inline constexpr SlotState kInCache =
    kCheckEveryCall ? SlotState::kCached : SlotState::kTaken;
inline constexpr SlotState kHandedOut =
    kCheckEveryCall ? SlotState::kLive : SlotState::kTaken;

// Where a slow path may run: returns the calling thread's M (binding one if
// it has none), or nullptr if the OS refused memory for one. Dies with
// `not_on_g0` off the scheduler stack, and with "<fn>: in malloc, size=4096
// want <n>" for a size other than kFixedStack while the M is in malloc or
// GC.
M* CheckContract(const char* not_on_g0, const char* fn, size_t n);

// The record of stack v, which must be a stack of `order`, and its slot in
// *slot; dies with a "stackfree: ..." message naming what is wrong. n is
// the size the caller gave (0: unknown, only the order).
ChunkRecord* RecordOf(void* v, int order, size_t n, int* slot);

// Moves stack v of `order` from state `from` to `to`; dies with the reason
// if it was not in `from` (freed twice, never handed out, ...).
void MoveStack(void* v, int order, size_t n, SlotState from, SlotState to);

// Checked builds: a stack leaves m's cache for its caller (kCached ->
// kLive), or comes back from one (kLive -> kCached), with n the caller's
// size.
void CheckHandOut(void* v);
void CheckTakeBack(void* v, size_t n);

// Dies with "stackfree: ..." for v freed right after being freed (or nil).
[[noreturn]] ABSL_ATTRIBUTE_COLD void DieFreedAgain(void* v);

// Dies with "stackfree: <size>-byte stack 0x... <what>[ <n>]".
[[noreturn]] ABSL_ATTRIBUTE_COLD void DieBadFree(const char* what,
                                                 const void* v, size_t n,
                                                 size_t size);

}  // namespace internal
}  // namespace stackalloc

#endif  // STACK_MISUSE_H_
