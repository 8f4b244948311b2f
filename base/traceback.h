// A traceback for fatal reports (Go's runtime·traceback): the instruction a
// signal interrupted and the functions that called it, found by following
// frame pointers on one stack whose bounds the caller knows, and named by
// Abseil's async-signal-safe symbolizer where the binary has symbols.
//
// For signal handlers, on a stack that overflowed: it reads nothing outside
// the stack it is given (a stale frame pointer ends the walk, it never
// faults), takes no lock of ours, allocates nothing from the heap (the
// symbolizer keeps its state in its own arena of mmap'ed pages), and writes
// with write(2). The symbolizer needs no set-up: on Linux it reads
// /proc/self/task/<pid>/maps and the objects named there
// (absl::InitializeSymbolizer's argv[0] is only its fallback where
// /proc/self/exe cannot be opened).
//
// Frames are found where code keeps frame pointers, as Bazel's default C++
// toolchain builds every compilation mode (-fno-omit-frame-pointer, -c opt
// too). Code built without them still has its instruction named (from the
// pc); its callers may be missing.

#ifndef BASE_TRACEBACK_H_
#define BASE_TRACEBACK_H_

#include <cstddef>
#include <cstdint>

#include "absl/base/config.h"

namespace stackalloc {

// What a signal handler's context says of the interrupted code.
struct Interrupted {
  uintptr_t pc = 0;  // The instruction.
  uintptr_t sp = 0;  // The stack pointer.
  uintptr_t fp = 0;  // The frame pointer (rbp on x86-64, x29 on aarch64).
};

// Reads them from a signal handler's ucontext_t (x86-64 and aarch64 Linux;
// all 0 elsewhere). Async-signal-safe.
Interrupted InterruptedAt(const void* ucontext);

// Stack WriteTraceback needs below its caller's frame when it names
// functions (the symbolizer's frames, the ELF reader's buffers, the
// demangler), and when it does not: measured by traceback_test.cc, with
// room to spare (naming took 4.5 KiB debug, 4.7 KiB -c opt, 4.9 KiB under
// TSan and 7.9 KiB under ASan; GCC 12, Abseil 20220623). The same 16 KiB
// under the sanitizers: ASan gives every thread (and TSan the main thread)
// a signal stack of 4 * SIGSTKSZ, 32 KiB on a CPU without AVX-512, which
// the M keeps, and a budget of 32 KiB never fit in it.
inline constexpr size_t kTracebackStack = 16 << 10;
#if defined(ABSL_HAVE_ADDRESS_SANITIZER) || defined(ABSL_HAVE_THREAD_SANITIZER)
inline constexpr size_t kTracebackStackWithoutNames = 8 << 10;
#else
inline constexpr size_t kTracebackStackWithoutNames = 2 << 10;
#endif

// The most lines WriteTraceback writes for frames; the frames beyond are
// counted on a last line.
inline constexpr int kTracebackLines = 32;

// Writes, on stderr, "  pc 0x<pc> in <function>" for the interrupted
// instruction, then "  called from 0x<return address> in <function>" for
// each frame found by following frame pointers from r.fp, reading only
// [max(r.sp, lo), hi): a stack's bounds, which must be mapped and readable.
// Consecutive frames with one return address (a recursion's) share a line,
// "(<n> frames)". `names`: whether to name the functions ("?" where the
// binary has no symbol), which needs kTracebackStack bytes of stack; else
// every "in <function>" is left out. Async-signal-safe.
void WriteTraceback(const Interrupted& r, uintptr_t lo, uintptr_t hi,
                    bool names);

}  // namespace stackalloc

#endif  // BASE_TRACEBACK_H_
