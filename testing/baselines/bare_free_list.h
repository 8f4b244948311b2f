// The physical limit of a per-thread stack pool: a bare thread-local free
// list of 4 KiB blocks, called out of line, with no contract checks, no
// statistics and no bound. Benchmarks compare stackalloc against it.
//
// Each thread has its own list; a block must be freed on the thread that
// allocated it. Blocks are never returned to the OS.

#ifndef TESTING_BASELINES_BARE_FREE_LIST_H_
#define TESTING_BASELINES_BARE_FREE_LIST_H_

namespace stackalloc {
namespace baseline {

// A 4 KiB block, from the calling thread's list or fresh from the OS.
void* BareAlloc();
// Pushes p onto the calling thread's list.
void BareFree(void* p);

// The same for stacks of OrderStackSize(order) bytes, one list per order.
void* BareAllocOrder(int order);
void BareFreeOrder(void* p, int order);

}  // namespace baseline
}  // namespace stackalloc

#endif  // TESTING_BASELINES_BARE_FREE_LIST_H_
