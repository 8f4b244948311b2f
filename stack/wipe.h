// Wiping a stack between two users (private to //stack; SetStackWipe in
// stackalloc.h): zeroing the pages a stack's earlier users touched, and no
// other, so the cost follows those pages rather than the stack's size.
//
// The allocator never writes into a stack, so the stack's resident pages
// are exactly the pages its users touched since its slot last returned its
// memory (the census's reading, stack/usage.h): one mincore() says which,
// and a memset zeroes each run of them; the pages stay, and the next user
// finds them mapped. A stack of one page is zeroed without asking: its user
// touched it (its first frame is there), and the next user will.
//
// Measured against MADV_DONTNEED of the whole stack, which frees the
// touched pages but makes the next user fault each one back in (and shoots
// down the other cores' TLBs): mincore and memset cost less at every size
// and depth on the development VM, 1.8-3.7x with one page touched and
// 7-43x with every page (//testing/perf:wipe_strategy_benchmark,
// docs/tuning.md).

#ifndef STACK_WIPE_H_
#define STACK_WIPE_H_

#include <cstddef>

namespace stackalloc {
namespace internal {

// Zeroes every resident page of the stack [v, v + size): v page-aligned,
// size a multiple of the page size, at most kMaxOrderStack. Leaves the
// pages no one touched untouched (but for a stack of one page, which it
// zeroes whole). If the kernel will not say which pages are resident
// (mincore() refused), zeroes the whole stack. Never allocates.
void WipeStack(void* v, size_t size);

}  // namespace internal
}  // namespace stackalloc

#endif  // STACK_WIPE_H_
